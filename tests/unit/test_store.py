import multiprocessing as mp

from mmbench.results import MetricRow, ResultStore, RunRecord


def make_record(run_id: str, *, status: str = "finished", seed: int = 1111, value: float = 0.5) -> RunRecord:
    return RunRecord(
        run_id=run_id, config_hash=f"hash-{run_id}", dataset="mosi-synth", data_sha256="d" * 64, method="fusion",
        protocol="fixed", condition="all", train_setting="complete", selection="valid", seed=seed,
        mask_sha256="m" * 64, status=status, started_at="2026-01-01T00:00:00", synthetic=True,
        package_version="0.1.0", git_commit=None, config={"lr": 0.001}, n_test=10,
        metrics=[MetricRow("test", "L", "mae", value), MetricRow("test", "L", "acc2_non0", 0.7)])


def test_round_trip_and_finished_lookup(tmp_path):
    store = ResultStore(tmp_path)
    store.save(make_record("a"))
    store.save(make_record("b", status="failed"))
    assert store.is_finished("hash-a") and not store.is_finished("hash-b")
    table = store.long_table()
    assert len(table) == 4
    assert set(table["metric"]) == {"mae", "acc2_non0"}


def test_saving_a_run_again_replaces_its_metrics(tmp_path):
    store = ResultStore(tmp_path)
    store.save(make_record("a", value=0.5))
    store.save(make_record("a", value=0.9))
    rows = store.metric_rows("a")
    assert sorted(r.value for r in rows if r.metric == "mae") == [0.9]


def _write_many(args):
    directory, prefix, count = args
    store = ResultStore(directory)
    for i in range(count):
        store.save(make_record(f"{prefix}-{i}"))


def test_two_processes_writing_at_once_lose_no_rows(tmp_path):
    ResultStore(tmp_path)
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(_write_many, [(tmp_path, "p1", 40), (tmp_path, "p2", 40)])
    store = ResultStore(tmp_path)
    assert len(store.runs()) == 80
    assert len(store.long_table()) == 160
