"""The fake Lotus node lives in scripts/fakes (`make run REPLICATE=1` runs it too)."""
from scripts.fakes.lotus import GENESIS, FakeChain, FakeLotus  # noqa: F401
