"""The dataset index (DAG-CBOR, the design's DataModel), its builder and kubo client, and the
client side that reads it back: resolving paths and fetching verified blocks."""
