"""What the ranking API accepts and answers (the routes declare these; see shared/schema.py).
Metric names are data here: which exist depends on the enabled sources, so the handlers check them."""
from shared import criteria
from shared.operations import paged
from shared.schema import Arr, Bool, Custom, Int, Map, Num, Obj, Str, Text, record

MAX_LIMIT = 10_000
MAX_FIELDS = 100

PROVIDER_ID = Str("a storage provider's ID address", max_length=100, example="f01000")

# A stored value: a number, a bool or a string (null where the provider lacks the metric).
METRIC_VALUE = Custom({"type": ["number", "boolean", "string", "null"]}, lambda field, value: value,
                      "the metric's value: a number, bool or string; null where the provider lacks it")


# Names, operators and value types are checked by criteria.parse against the metrics the enabled
# sources declare.
CRITERIA = criteria.SHAPE

LOOKUP = Obj({
    "criteria": Custom(CRITERIA, lambda field, value: value,
                       "which providers: an expression (`filrep.success_rate > 0.5 && !deals.slashed`) or a "
                       "list of [metric, op, value] entries, all of which must hold (default: every provider)",
                       example="provider in (f01000, f01001) && deals.acceptance_rate >= 0.5"),
    "sort": Str("a metric to sort by, best first with a leading -; providers lacking it come last "
                "(default: by id)", example="-filrep.score"),
    "fields": Arr(Str("a metric name"), "metrics to show besides those of criteria and sort", max_items=MAX_FIELDS),
    "limit": Int("providers to return at most", minimum=1, maximum=MAX_LIMIT, default=100),
}, closed=True, name="RankingLookup")

ROW = Obj({"id": PROVIDER_ID}, required=("id",), extra=METRIC_VALUE, name="ProviderRow",
          description="a provider and metric values, by metric name")
MATCHES = Arr(ROW, "the providers chosen, best first")
PROVIDERS = record(paged("providers", ROW, "tracked providers"), name="ProviderList")

SOURCE_STATUS = Obj({
    "lastRun": Num("Unix seconds"), "lastSuccess": Num("Unix seconds"), "error": Text("of the last run", nullable=True),
    "errorAt": Num("Unix seconds"), "note": Text(nullable=True), "providers": Int("providers of the last success"),
}, required=("lastRun", "error", "note"), name="SourceStatus", nullable=True)

PROVIDER = record({
    "id": PROVIDER_ID,
    "metrics": Arr(record({"name": Text(), "value": METRIC_VALUE, "source": Text(), "updatedAt": Num("Unix seconds"),
                           "ageSeconds": Num(), "sourceError": Text("the source's last error", nullable=True)},
                          name="ProviderMetric")),
    "sources": Map(SOURCE_STATUS, "each enabled source's state (null before its first run)"),
}, name="ProviderDetails")

NO_FIELDS = Obj({}, closed=True, name="NoFields", description="an empty object, {}")

ROUND = record({
    "startedAt": Num("Unix seconds"),
    "sources": Map(record({"ok": Bool(), "error": Text(nullable=True), "note": Text(nullable=True),
                           "providers": Int(), "values": Int()}, name="SourceRound")),
    "changed": Arr(record({"provider": Text(), "metric": Text(), "old": METRIC_VALUE, "new": METRIC_VALUE},
                          name="MetricChange"), "the first 1000 changed values"),
    "changedCount": Int(), "providers": Int("tracked providers"), "seconds": Num(),
}, name="RankingRound")

REPORT = record({"generatedAt": Num("Unix seconds"),
                 **paged("providers", ROW, "providers with deals of ours")}, name="RankingReport")
