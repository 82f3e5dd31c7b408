"""The project's JupyterLab, started and driven the way its web page drives it.

``LabServer`` starts ``jupyter lab`` with the project's configuration
(``.jupyter/jupyter_server_config.py``, the one ``make lab`` uses) on a free port of 127.0.0.1,
with a random token and a private Jupyter config, data and runtime folder, so nothing of the user's
own setup takes part. Leaving the ``with`` block shuts the server down through its API and checks
that the server and every kernel it started have exited.

``run_notebook`` does what the notebook page does on *Run All*: it opens a chapter through the
contents API (where jupytext turns the ``.md`` into a notebook), starts a kernel session through
the sessions API, sends each code cell as an ``execute_request`` over the kernel's websocket and
collects what comes back on the iopub channel as nbformat outputs.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from chapters import ROOT

#: set by ``make test``: a lab test that cannot run fails; elsewhere it is skipped, saying why
REQUIRED = os.environ.get("NTK_LAB_TESTS") == "1"


def unavailable(reason: str):
    """Fail (under ``make test``) or skip the calling test module: the lab cannot be tested."""
    reason += " (make lab-env installs requirements-lab.txt; make browser installs Chromium)"
    if REQUIRED:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    import jupyterlab  # noqa: F401
    import websocket  # websocket-client
except ImportError as exc:
    unavailable(f"{exc.name} is not installed")

CONFIG = ROOT / ".jupyter" / "jupyter_server_config.py"
#: variables that the test command sets and a student's shell does not (``make lab`` unsets them)
NOT_A_STUDENT = ("NTK_PROGRESS", "TQDM_MININTERVAL", "MPLBACKEND", "PYTEST_XDIST_WORKER")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie of ours counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class LabServer:
    """``jupyter lab`` with the project's configuration, for the length of a ``with`` block."""

    def __init__(self, home: Path, startup_timeout: float = 90.0):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.kernel_pids: set[int] = set()
        self.log_path = self.home / "jupyter-lab.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_A_STUDENT}
        for name in ("config", "data", "runtime", "ipython"):
            (self.home / name).mkdir(parents=True, exist_ok=True)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        return env

    def __enter__(self) -> LabServer:
        cmd = [
            sys.executable, "-m", "jupyterlab", f"--config={CONFIG}", "--no-browser",
            f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
        ]
        self._log = open(self.log_path, "w")  # closed in _stop
        self.proc = subprocess.Popen(
            cmd, cwd=self.home, env=self.environment(), stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited at start-up:\n{self.log()[-3000:]}")
            try:
                self.api("GET", "/api/status")
                return self
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self._stop(quiet=True)
                    log = self.log()[-3000:]
                    raise RuntimeError(f"jupyter lab did not answer:\n{log}") from None
                time.sleep(0.25)

    def __exit__(self, exc_type, *_) -> None:
        self._stop(quiet=exc_type is not None)  # a failure inside the block is the news

    def _stop(self, quiet: bool = False) -> None:
        """Shut down through the API, as File > Shut Down does; kill only a server that hangs."""
        try:
            self.api("POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired as hung:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if not quiet:
                log = self.log()[-3000:]
                raise RuntimeError(f"jupyter lab ignored /api/shutdown:\n{log}") from hung
        finally:
            self._log.close()
            deadline = time.monotonic() + 10
            while any(pid_alive(p) for p in self.kernel_pids) and time.monotonic() < deadline:
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def api(self, method: str, path: str, body: dict | None = None):
        """One call of the server's REST API; the decoded JSON answer (None if empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None


def _message(msg_type: str, content: dict, session: str) -> dict:
    header = {
        "msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": session,
        "username": "student", "version": "5.3", "date": "",
    }
    return {
        "header": header, "parent_header": {}, "metadata": {}, "content": content,
        "channel": "shell", "buffers": [],
    }


def _output(msg: dict) -> dict | None:
    """The nbformat output of an iopub message, or None if it is not one."""
    kind, content = msg["header"]["msg_type"], msg["content"]
    if kind == "stream":
        return {"output_type": "stream", "name": content["name"], "text": content["text"]}
    if kind in ("display_data", "execute_result"):
        out = {"output_type": kind, "data": content["data"], "metadata": content["metadata"]}
        if kind == "execute_result":
            out["execution_count"] = content["execution_count"]
        return out
    if kind == "error":
        return {
            "output_type": "error", "ename": content["ename"], "evalue": content["evalue"],
            "traceback": content["traceback"],
        }
    return None


class KernelChannel:
    """The websocket of one kernel, as the notebook page holds it."""

    def __init__(self, server: LabServer, kernel_id: str, session_id: str):
        self.session = session_id
        url = f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(
            f"{url}?session_id={session_id}",
            header=[f"Authorization: token {server.token}"], timeout=5,
        )

    def close(self) -> None:
        self.ws.close()

    def request(self, msg_type: str, content: dict, timeout: float) -> tuple[dict, list]:
        """Send a shell request; its reply and the iopub messages it caused, until idle."""
        msg = _message(msg_type, content, self.session)
        msg_id = msg["header"]["msg_id"]
        self.ws.send(json.dumps(msg))
        reply, iopub, idle = None, [], False
        deadline = time.monotonic() + timeout
        while reply is None or not idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{msg_type} got no answer in {timeout} s")
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            if isinstance(frame, bytes):  # a message with binary buffers (widgets): not ours
                continue
            got = json.loads(frame)
            if got.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if got["channel"] == "shell":
                reply = got
            elif got["channel"] == "iopub":
                if got["header"]["msg_type"] == "status":
                    idle = got["content"]["execution_state"] == "idle"
                else:
                    iopub.append(got)
        return reply, iopub

    def execute(self, code: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
        """Run ``code``; the execute_reply content and the nbformat outputs."""
        content = {
            "code": code, "silent": False, "store_history": True, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True,
        }
        reply, iopub = self.request("execute_request", content, timeout)
        outputs = [o for o in map(_output, iopub) if o is not None]
        return reply["content"], outputs


def open_session(server: LabServer, path: str, kernel: str) -> tuple[dict, KernelChannel]:
    """Start a kernel session for notebook ``path`` (relative to the project root)."""
    session = server.api("POST", "/api/sessions", {
        "path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": kernel},
    })
    channel = KernelChannel(server, session["kernel"]["id"], session["id"])
    channel.request("kernel_info_request", {}, timeout=60)
    return session, channel


_PROBE = (
    "import json as _j, os as _o, sys as _s\n"
    "print(_j.dumps({'pid': _o.getpid(), 'prefix': _s.prefix, 'cwd': _o.getcwd()}))"
)


def run_notebook(server: LabServer, path: str, cell_timeout: float = 120.0):
    """Open ``path`` through the contents API and run its code cells in a server kernel session.

    Returns ``(model, seconds, info)``: the contents model with every code cell's ``outputs`` and
    ``execution_count`` filled in as the notebook page would fill them, the wall-clock time of
    running all cells, and what the kernel says about itself (``sys.prefix``, working directory).
    The run stops at the first cell that fails, as *Run All* does.
    """
    model = server.api("GET", f"/api/contents/{path}?content=1")
    kernel = model["content"]["metadata"]["kernelspec"]["name"]
    session, channel = open_session(server, path, kernel)
    try:
        start = time.perf_counter()
        code = (c for c in model["content"]["cells"] if c["cell_type"] == "code")
        for number, cell in enumerate(code, start=1):
            try:
                reply, cell["outputs"] = channel.execute(cell["source"], timeout=cell_timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"{path}, code cell {number}: still running after {cell_timeout} s"
                ) from None
            cell["execution_count"] = reply.get("execution_count")
            if reply["status"] != "ok":
                break
        seconds = time.perf_counter() - start
        # asked after the chapter, so that the chapter runs in a fresh kernel
        _, out = channel.execute(_PROBE, timeout=60)
        info = json.loads(out[0]["text"])
        server.kernel_pids.add(info["pid"])
    finally:  # a cell that timed out is the news: no probe of a busy kernel hides it
        channel.close()
        server.api("DELETE", f"/api/sessions/{session['id']}")
    return model, seconds, info
