"""`make run` and the README's commands, the way a new user meets them (issue 13, items 5 and 6).

The commands come from README.md itself, so the README and the code cannot drift apart. They
run in a copy of the repository (what a fresh clone would hold, plus uncommitted changes), with
`.venv` pointing at this virtualenv, after `make run` set it up and while it serves, with only
PATH and HOME in the environment: nothing exported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port, get, wait_for

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
PASSWORD = "Correct-horse-battery-42"


def readme_commands() -> list[str]:
    """Every command line of the `sh` blocks under "Command line", and every inline
    `.venv/bin/python manage.py ...` outside the Production section (which needs its own
    database), in README order. Continuation lines are joined; comments stay (bash drops them)."""
    text = README.read_text()
    section = text[text.index("\n## Command line\n") :]
    section = section[: section.index("\n## ", 1)]
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]
    before_production = text[: text.index("\n### Production\n")]
    for inline in re.findall(r"`(\.venv/bin/python manage\.py [^`]+)`", before_production):
        if inline not in commands:
            commands.append(inline)
    return commands


def copy_checkout(target: Path) -> None:
    """The files a clone would have (tracked and new, not ignored), and .venv -> this venv."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if name.startswith(".venv") or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))


def processes_in(directory: Path) -> dict[int, str]:
    """Processes whose working directory is `directory`: what `make run` started there."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == directory:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def healthy(port: int) -> bool:
    try:
        return get(port, "/healthz", timeout=2)[0] == 200
    except OSError:
        return False


def clean_env(home: Path) -> dict[str, str]:
    """A new user's shell: no DJANGO_ENV, no SECRET_KEY, nothing else exported."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


@dataclass
class Served:
    checkout: Path
    port: int
    make: subprocess.Popen[bytes]
    log_path: Path
    home: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def shell(self, script: str, *, timeout: int, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """`script` in bash in the checkout, as a new user types it: nothing exported."""
        return subprocess.run(  # noqa: S603 - the README's own commands
            ["bash", "-c", script],  # noqa: S607
            cwd=self.checkout,
            env=clean_env(self.home),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`make run` in a copy of the repository, on a free port, until a test stops it."""
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.skip("needs make and git")
    base = tmp_path_factory.mktemp("run")
    checkout = (base / "inbox").resolve()
    checkout.mkdir()
    copy_checkout(checkout)
    home = base / "home"
    home.mkdir()
    port = free_port()
    log_path = base / "make-run.log"
    with log_path.open("wb") as log:
        # -o: the virtualenv is this one, already installed; make must not pip-install into it.
        # A session of its own, like a terminal's foreground job: Ctrl+C goes to its group.
        make = subprocess.Popen(  # noqa: S603 - make with arguments chosen here
            ["make", "-o", ".venv/.installed", "run", f"PORT={port}"],  # noqa: S607
            cwd=checkout,
            env=clean_env(home),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(checkout, port, make, log_path, home)
    try:
        assert wait_for(lambda: healthy(port) or make.poll() is not None, timeout=120), served.log()
        assert make.poll() is None, f"make run exited:\n{served.log()}"
        wait_for(lambda: "shown only this once" in served.log(), timeout=10)
        yield served
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        for pid in processes_in(checkout):
            os.kill(pid, signal.SIGKILL)


def test_it_prints_the_login_under_serving_without_migration_lines_or_warnings(served: Served) -> None:
    log = served.log()
    serving = log.index(f"Serving http://127.0.0.1:{served.port}/")
    assert serving < log.index("Staff login created: admin / ")
    assert "Applying " not in log  # migrations run quietly
    assert "seems quite high" not in log  # granian's thread-count warning
    assert "WARNING" not in log[:serving]


def test_it_runs_every_readme_command_as_written_after_make_run(served: Served) -> None:
    commands = readme_commands()
    assert len(commands) >= 9, commands
    assert ".venv/bin/python manage.py changepassword admin" in commands
    assert any("create_endpoint" in c and "--json" in c for c in commands)
    assert any("send_test_webhook" in c for c in commands)
    for command in commands:
        # changepassword asks twice
        result = served.shell(command, timeout=120, stdin=f"{PASSWORD}\n{PASSWORD}\n")
        assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
        if "--json" in command and "create_endpoint" in command:
            # The URL names the port `make run` actually serves.
            data = json.loads(result.stdout)
            assert data["url"].startswith(f"http://127.0.0.1:{served.port}/hooks/")
        elif "--json" in command:
            assert json.loads(result.stdout)["id"]
        if "send_test_webhook" in command:
            assert "answered 200" in result.stdout  # ... and that port took the delivery


def api_session() -> list[str]:
    """The `sh` blocks of the README's "API" section (listen's included), in order: one shell
    session, as the README says (the first line sets TOKEN for the others)."""
    text = README.read_text()
    section = text[text.index("\n## API\n") :]
    section = section[: section.index("\n## ", 1)]
    return [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_it_runs_the_readme_api_examples_and_listen_quick_start_as_written(served: Served) -> None:
    lines = api_session()
    assert any(line.startswith("TOKEN=$(") for line in lines)
    assert any("listen.py --server" in line for line in lines)
    script = ["set -euo pipefail"]
    for line in lines:
        # The README names `make run`'s default port; this run serves another one.
        command = line.replace("127.0.0.1:8000", f"127.0.0.1:{served.port}")
        if "listen.py --server" in command:
            # It runs until Ctrl+C: give it 3 seconds, then the Ctrl+C (it exits 0).
            command = f"timeout --preserve-status -s INT 3 {command}"
        script.append(command)
    result = served.shell("\n".join(script), timeout=120)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    out = result.stdout
    assert '"name":"api-demo"' in out
    assert '"credential":{"token":' in out
    assert '"results":[]' in out  # no failed message yet
    assert '"action":"mark_read"' in out
    assert "200 application/vnd.oai.openapi+json" in out
    assert f"Listening to api-demo on http://127.0.0.1:{served.port}" in out


def test_it_runs_the_readme_metrics_example_as_written(served: Served) -> None:
    text = README.read_text()
    section = text[text.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    [block] = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    # The README names `make run`'s default port; this run serves another one.
    command = block.strip().replace("127.0.0.1:8000", f"127.0.0.1:{served.port}")
    result = served.shell(f"set -euo pipefail\n{command}", timeout=60)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    # make run generated the token into var/.env and the server took it from there.
    assert "inbox_messages_pending " in result.stdout
    assert "inbox_oldest_pending_seconds " in result.stdout


def test_it_stops_the_web_server_and_the_worker_on_one_ctrl_c(served: Served) -> None:
    running = processes_in(served.checkout)
    assert any("granian" in command for command in running.values()), running
    assert any("db_worker" in command for command in running.values()), running

    # What a terminal does on Ctrl+C: SIGINT to every process of the foreground group.
    os.killpg(served.make.pid, signal.SIGINT)
    served.make.wait(timeout=15)
    assert wait_for(lambda: not processes_in(served.checkout), timeout=10), processes_in(served.checkout)
    log = served.log()
    assert "Segmentation fault" not in log
    assert "Traceback" not in log
    assert log.rstrip().endswith("Stopped."), log[-2000:]
    with pytest.raises(ConnectionRefusedError):
        get(served.port, "/healthz", timeout=2)


# --- The env file: precedence, and production failing closed ----------------------------------
def settings_value(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_refuses_to_start_without_an_env_file_or_a_secret_key(tmp_path: Path) -> None:
    result = settings_value({**clean_env(tmp_path), "VAR_DIR": str(tmp_path)}, "settings.DEBUG")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DJANGO_ENV=production" in result.stderr


def test_it_reads_the_env_file_and_lets_the_real_environment_win(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DJANGO_ENV=development\nSECRET_KEY=from-the-file\nPORT=8111\n")
    env = {**clean_env(tmp_path), "VAR_DIR": str(tmp_path)}
    result = settings_value(env, "settings.DJANGO_ENV, settings.SECRET_KEY, settings.PUBLIC_BASE_URL")
    assert result.stdout.strip() == "development from-the-file http://127.0.0.1:8111", result.stderr
    result = settings_value({**env, "PORT": "8112"}, "settings.PUBLIC_BASE_URL")
    assert result.stdout.strip() == "http://127.0.0.1:8112", result.stderr


def test_it_ignores_the_env_file_in_a_test_run(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DJANGO_ENV=development\nPORT=8111\nFORWARD_ALLOW_PRIVATE=false\n")
    env = {**clean_env(tmp_path), "VAR_DIR": str(tmp_path), "DJANGO_ENV": "test"}
    result = settings_value(env, "settings.DJANGO_ENV, settings.PUBLIC_BASE_URL, settings.FORWARD_ALLOW_PRIVATE")
    assert result.stdout.strip() == "test http://127.0.0.1:8000 True", result.stderr
