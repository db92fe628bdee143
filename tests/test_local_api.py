"""The run's own Prefect server: started in a home that does not exist yet, answering, stopped."""

import urllib.request

from pipelines.prefect_setup import _LocalServer, _prepare_prefect


def test_the_run_server_starts_in_a_home_not_made_yet(tmp_path, monkeypatch):
    home = tmp_path / "new" / "prefect-home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    _prepare_prefect()
    assert home.is_dir()

    server = _LocalServer()
    server.start()
    try:
        server.wait_until_ready()
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/api/health", timeout=5) as r:
            assert r.status == 200
    finally:
        server.stop()
    assert (home / "local-api.log").is_file()
    assert server.process is None
