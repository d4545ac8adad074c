"""The speed work of issue 12 must not change a byte of what the suite produces: CIDs, pieces, CAR
contents, block indexes and index sources of a random tree are compared with the values recorded
before it (tests/fixtures/perf/record.py says how)."""
import json
import os

from tests.perf_tree import commp_values, make_random_tree, pack_values, pipeline_values

RECORDED = json.load(open(os.path.join(os.path.dirname(__file__), "fixtures", "perf", "recorded.json")))


def test_commp_of_boundary_sizes_is_unchanged():
    assert commp_values() == RECORDED["commp"]


def test_pack_of_a_random_tree_is_unchanged(tmp_path):
    make_random_tree(str(tmp_path / "tree"))
    (tmp_path / "out").mkdir()
    got = pack_values(str(tmp_path / "tree"), str(tmp_path / "out"))
    assert got["pack"] == RECORDED["pack"]
    assert got["packChunk"] == RECORDED["packChunk"]


async def test_the_pipeline_of_a_random_tree_is_unchanged(db, tmp_path):
    make_random_tree(str(tmp_path / "tree"))
    got = await pipeline_values(db, str(tmp_path / "tree"), str(tmp_path / "cars"))
    assert got == RECORDED["pipeline"]
