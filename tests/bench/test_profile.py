"""bench/profile.py's sorting of py-spy samples into parts (the rest needs wrk and servers)."""

from pathlib import Path

from bench import profile

HTTP = "IngestHandler._ingest (kudos/api/ingest.py:150)"
APPLY = "apply_campaigns (kudos/services/rewards.py:105)"
EVALUATE = "_evaluate (kudos/rules/engine.py:330)"
BULK = "Database.executemany (kudos/storage/db.py:112)"


def test_a_sample_inside_a_statement_is_the_stores_even_under_the_campaigns() -> None:
    assert profile.part_of([HTTP, APPLY, "load (kudos/storage/rewards.py:40)", BULK]) == "store"


def test_a_sample_in_the_engine_is_the_campaigns_even_without_its_outer_frames() -> None:
    assert profile.part_of([APPLY, EVALUATE]) == "campaigns"
    assert profile.part_of([EVALUATE]) == "campaigns"  # py-spy lost the outer frames


def test_a_sample_elsewhere_is_the_rest() -> None:
    assert profile.part_of([HTTP, "decode_event_batch (kudos/domain/payload.py:20)"]) == "rest"


def test_samples_are_summed_per_part(tmp_path: Path) -> None:
    raw = tmp_path / "spy.raw"
    raw.write_text(f"{HTTP};{BULK} 3\n{HTTP};{APPLY};{EVALUATE} 5\n{HTTP} 2\n{EVALUATE} 1\n\n")
    assert profile.read_samples(raw) == {"store": 3, "campaigns": 6, "rest": 2}
