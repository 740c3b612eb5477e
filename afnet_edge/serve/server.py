"""Start the ``tritonserver`` bundled in the ``nvidia-pytriton`` wheel on a model repository (``afnet-edge serve
--run``), and stop it cleanly.

The wheel ships a real Triton Inference Server with the Python backend only. Three things make it start on an
ordinary repository, all arranged here in a private workspace folder (removed at shutdown):

* the Python backend's stub, ``python_backend_stubs/<X.Y>/triton_python_backend_stub`` for the running interpreter,
  copied into the workspace's ``backends/python`` next to the backend library (else "triton_python_backend_stub is
  not found");
* the wheel's bundled libraries ``nvidia_pytriton.libs`` on ``LD_LIBRARY_PATH`` (else loading a model hangs looking
  for libcudart);
* the running interpreter's library folder first on ``LD_LIBRARY_PATH`` (else the stub mixes two libpython builds),
  and its ``bin`` folder first on ``PATH``: the stub embeds Python in isolated mode and takes its prefix (hence its
  ``site-packages``) from the first ``python3`` on ``PATH``.

NumPy 2: the stub's compiled NumPy bridge reads NumPy 1.x array descriptors; under NumPy 2 tensors come back empty or
the stub aborts ("cannot reshape array of size ..."). nvidia-pytriton therefore pins ``numpy<2``. When the running
interpreter has NumPy >= 2, the stub runs in a *stub environment*: a ``venv --system-site-packages`` of this
interpreter with ``numpy<2`` in its own ``site-packages`` (``afnet-edge serve --make-stub-env DIR`` creates it; pass
it with ``--stub-env DIR`` or ``$AFNET_EDGE_TRITON_STUB_ENV``); its ``bin`` goes first on ``PATH``.

The server listens on 127.0.0.1 only; ports are chosen free unless given. Stopping sends SIGTERM (Triton waits for
in-flight requests, unloads the models, stops the stubs), waits a bounded time, then kills the process group. The
Python backend's shared-memory regions carry a per-run prefix so that a test can check none is left behind.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import typing
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

#: Environment variable naming the stub environment (see the module docstring).
STUB_ENV_VAR = "AFNET_EDGE_TRITON_STUB_ENV"
EXTRA = "pip install -e .[serve]"
SHM_DIR = "/dev/shm"


@dataclass(frozen=True)
class TritonInstall:
    """Paths inside an installed ``nvidia-pytriton`` wheel."""

    server: str          # .../pytriton/tritonserver/bin/tritonserver
    python_backend: str  # .../pytriton/tritonserver/backends/python
    stub: str            # .../pytriton/tritonserver/python_backend_stubs/<X.Y>/triton_python_backend_stub
    libs: str            # .../site-packages/nvidia_pytriton.libs


def find_triton() -> TritonInstall:
    """Locate the bundled ``tritonserver``; ImportError naming the extra when nvidia-pytriton is not installed."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"`afnet-edge serve --run` needs the tritonserver of the nvidia-pytriton wheel: {EXTRA}")
    pkg = list(spec.submodule_search_locations)[0]
    base = os.path.join(pkg, "tritonserver")
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    inst = TritonInstall(server=os.path.join(base, "bin", "tritonserver"),
                         python_backend=os.path.join(base, "backends", "python"),
                         stub=os.path.join(base, "python_backend_stubs", ver, "triton_python_backend_stub"),
                         libs=os.path.join(os.path.dirname(pkg), "nvidia_pytriton.libs"))
    if not os.path.isfile(inst.server):
        raise ImportError(f"nvidia-pytriton at {pkg} has no bundled tritonserver (expected {inst.server}): {EXTRA}")
    if not os.path.isfile(inst.stub):
        raise ImportError(f"nvidia-pytriton has no Python backend stub for Python {ver} (expected {inst.stub})")
    return inst


def numpy_major() -> int:
    import numpy
    return int(numpy.__version__.split(".")[0])


def _site_packages(env_dir: str) -> str:
    return os.path.join(env_dir, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages")


def check_stub_env(env_dir: str) -> str:
    """``env_dir`` if it is a stub environment of this interpreter (pyvenv.cfg, bin/python3, numpy<2 inside);
    ValueError saying what is wrong otherwise."""
    cfg = os.path.join(env_dir, "pyvenv.cfg")
    if not os.path.isfile(cfg) or not os.path.exists(os.path.join(env_dir, "bin", "python3")):
        raise ValueError(f"--stub-env: '{env_dir}' is not a virtual environment (create it with "
                         f"`afnet-edge serve --make-stub-env {env_dir}`)")
    site = _site_packages(env_dir)
    found = [d for d in (os.listdir(site) if os.path.isdir(site) else [])
             if d.startswith("numpy-") and d.endswith(".dist-info")]
    if not found or not found[0].split("-")[1].startswith("1."):
        raise ValueError(f"--stub-env: '{env_dir}' has no numpy 1.x in {site} (recreate it with "
                         f"`afnet-edge serve --make-stub-env {env_dir}`)")
    return env_dir


def make_stub_env(env_dir: str, numpy_spec: str = "numpy<2") -> str:
    """Create the stub environment: ``python -m venv --system-site-packages --without-pip DIR`` of this interpreter,
    then ``pip install --target DIR/lib/pythonX.Y/site-packages numpy<2`` (from the package index pip uses)."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", env_dir], check=True)
    site = _site_packages(env_dir)
    os.makedirs(site, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", site,
                    numpy_spec], check=True)
    # when this interpreter is itself a venv, the new one's "system" site-packages are the base interpreter's: name
    # this interpreter's own site-packages too (after numpy<2), so that torch and afnet_edge are found
    import site as site_mod
    parents = [p for p in site_mod.getsitepackages() + [sysconfig.get_paths()["purelib"]] if os.path.isdir(p)]
    with open(os.path.join(site, "afnet_edge_parent_site.pth"), "w", encoding="utf-8") as f:
        f.write("\n".join(dict.fromkeys(parents)) + "\n")
    return check_stub_env(env_dir)


def resolve_stub_env(env_dir: str | None) -> str | None:
    """The stub environment to use: None when this interpreter's NumPy is 1.x (the stub needs none), else
    ``env_dir`` or ``$AFNET_EDGE_TRITON_STUB_ENV`` (checked); ValueError with the commands when neither is given."""
    env_dir = env_dir or os.environ.get(STUB_ENV_VAR) or None
    if env_dir:
        return check_stub_env(env_dir)
    if numpy_major() < 2:
        return None
    raise ValueError(f"--stub-env: this interpreter has numpy {__import__('numpy').__version__} but the Triton "
                     f"Python backend stub of nvidia-pytriton needs numpy<2; create a stub environment with "
                     f"`afnet-edge serve --make-stub-env DIR` and pass --stub-env DIR (or set ${STUB_ENV_VAR})")


#: What the tritonserver of nvidia-pytriton can run: the Python backend and ensembles of Python-backend models.
SERVABLE_BACKENDS = ("python",)


def servable_models(repo: str) -> tuple[list[str], dict[str, str]]:
    """(models this server can load, {model it cannot load: why}) for the repository ``repo``: models of another
    backend (``onnxruntime``, ``tensorrt_plan``) and ensembles with such a step are left out."""
    import re

    kinds: dict[str, str] = {}
    steps: dict[str, list[str]] = {}
    for name in sorted(os.listdir(repo)):
        cfg = os.path.join(repo, name, "config.pbtxt")
        if not os.path.isfile(cfg):
            continue
        with open(cfg, encoding="utf-8") as f:
            text = f.read()
        m = re.search(r'^\s*(backend|platform):\s*"([^"]+)"', text, flags=re.M)
        kinds[name] = m.group(2) if m else "unknown"
        steps[name] = re.findall(r'model_name:\s*"([^"]+)"', text)
    skipped = {n: f"no {k} backend in this server" for n, k in kinds.items()
               if k not in SERVABLE_BACKENDS and k != "ensemble"}
    for n, k in kinds.items():
        if k == "ensemble":
            bad = [s for s in steps[n] if s in skipped or s not in kinds]
            if bad:
                skipped[n] = f"its step {bad[0]} cannot be loaded here"
    return [n for n in kinds if n not in skipped], skipped


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(inst: TritonInstall, stub_env: str | None) -> dict[str, str]:
    """Environment of the server process (library path and PATH as the module docstring explains)."""
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR") or os.path.join(sys.base_prefix, "lib")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, inst.libs, env.get("LD_LIBRARY_PATH", "")) if p)
    bins = [os.path.join(stub_env, "bin")] if stub_env else []
    bins.append(os.path.dirname(sys.executable))
    env["PATH"] = os.pathsep.join(bins + [env.get("PATH", "")])
    env.pop("PYTHONHOME", None)
    return env


class TritonServer:
    """A ``tritonserver`` process on ``repo`` (127.0.0.1): ``start()``, ``wait_ready()``, ``stop()``; also a context
    manager. ``http_url`` / ``grpc_url`` / ``metrics_url`` say where it listens; ``log_path`` is its log."""

    def __init__(self, repo: str, *, http_port: int = 0, grpc_port: int = 0, metrics_port: int = 0,
                 stub_env: str | None = None, log_verbose: int = 0, exit_timeout_s: int = 30,
                 log_path: str | None = None):
        if not os.path.isdir(repo):
            raise FileNotFoundError(f"--triton-repo: no such folder '{repo}'")
        self.repo = os.path.abspath(repo)
        self.inst = find_triton()
        self.stub_env = resolve_stub_env(stub_env)
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.metrics_port = metrics_port or free_port()
        if len({self.http_port, self.grpc_port, self.metrics_port}) < 3:
            raise ValueError("--http-port, --grpc-port and --metrics-port must differ")
        self.log_verbose = int(log_verbose)
        self.exit_timeout_s = int(exit_timeout_s)
        self.workspace: str | None = None
        self.shm_prefix = ""
        self.proc: subprocess.Popen | None = None
        self.skipped: dict[str, str] = {}
        self.last_log_tail = ""
        self._log_path = log_path
        self._log: typing.IO[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def log_path(self) -> str | None:
        return self._log_path

    def _prepare_backends(self) -> str:
        self.workspace = tempfile.mkdtemp(prefix="afnet_edge_triton_")
        dst = os.path.join(self.workspace, "backends", "python")
        os.makedirs(dst)
        for name in os.listdir(self.inst.python_backend):
            src = os.path.join(self.inst.python_backend, name)
            if os.path.isfile(src):
                shutil.copy2(src, os.path.join(dst, name))
        shutil.copy2(self.inst.stub, os.path.join(dst, "triton_python_backend_stub"))
        return os.path.join(self.workspace, "backends")

    def command(self, backends: str) -> list[str]:
        self.shm_prefix = f"afnet_edge_{os.getpid()}_{self.http_port}_"
        return [self.inst.server, f"--model-repository={self.repo}", f"--backend-directory={backends}",
                "--http-address=127.0.0.1", f"--http-port={self.http_port}",
                "--grpc-address=127.0.0.1", f"--grpc-port={self.grpc_port}",
                "--metrics-address=127.0.0.1", f"--metrics-port={self.metrics_port}", "--allow-gpu-metrics=false",
                f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
                f"--exit-timeout-secs={self.exit_timeout_s}", f"--log-verbose={self.log_verbose}",
                "--strict-readiness=true"] + self._model_control()

    def _model_control(self) -> list[str]:
        load, self.skipped = servable_models(self.repo)
        if not self.skipped:
            return []
        return ["--model-control-mode=explicit"] + [f"--load-model={n}" for n in load]

    def start(self) -> "TritonServer":
        if self.proc is not None:
            raise RuntimeError("the server is already started")
        backends = self._prepare_backends()
        assert self.workspace is not None
        if self._log_path is None:
            self._log_path = os.path.join(self.workspace, "tritonserver.log")
        self._log = open(self._log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(backends), stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=server_env(self.inst, self.stub_env),
                                         start_new_session=True)
        except BaseException:
            self._cleanup()
            raise
        return self

    def log_tail(self, n: int = 20) -> str:
        if not self._log_path or not os.path.isfile(self._log_path):
            return ""
        with open(self._log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until every model is ready (``/v2/health/ready``), at most ``timeout_s``; RuntimeError with the log
        tail when the server exits or the time runs out."""
        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {self.proc.returncode} while loading the "
                                   f"models:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.25)
        raise RuntimeError(f"tritonserver was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    def leftover_shm(self) -> list[str]:
        """Shared-memory files of this run's Python backend still present."""
        if not self.shm_prefix or not os.path.isdir(SHM_DIR):
            return []
        return sorted(f for f in os.listdir(SHM_DIR) if f.startswith(self.shm_prefix))

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait up to ``timeout_s`` (default: exit timeout + 15 s), then SIGKILL the process group; remove
        the workspace and this run's shared memory. Returns the server's exit code (None if it never started)."""
        code = None
        self.last_log_tail = ""
        if self.proc is not None:
            timeout_s = self.exit_timeout_s + 15.0 if timeout_s is None else timeout_s
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                code = None
            try:  # the stubs and anything else of the group, should one survive
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if code is None:
                code = self.proc.wait(timeout=10)
            if code != 0:
                self.last_log_tail = self.log_tail()
        self._cleanup()
        return code

    def _cleanup(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        for name in self.leftover_shm():
            try:
                os.unlink(os.path.join(SHM_DIR, name))
            except OSError:
                pass
        if self.workspace and os.path.isdir(self.workspace):
            keep_log = self._log_path and self._log_path.startswith(self.workspace + os.sep)
            if keep_log:
                self._log_path = None
            shutil.rmtree(self.workspace, ignore_errors=True)
        self.workspace = None

    def __enter__(self) -> "TritonServer":
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def run_until_signal(server: TritonServer, ready_timeout_s: float = 300.0, out=sys.stdout) -> int:
    """``afnet-edge serve --run``: start, print the endpoints, serve until SIGINT/SIGTERM (or the server exits), then
    stop cleanly. Returns the exit code for the CLI (0 after a signal)."""
    stop = {"signal": None}

    def handler(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        pid = server.proc.pid if server.proc is not None else None
        print(f"starting tritonserver pid {pid} on {server.repo} (workspace {server.workspace}, log "
              f"{server.log_path})", file=out, flush=True)
        deadline = time.monotonic() + ready_timeout_s
        while not server.ready():
            if stop["signal"] is not None:
                break
            if server.proc is not None and server.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {server.proc.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"tritonserver was not ready after {ready_timeout_s:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)
        for name, why in server.skipped.items():
            print(f"not loaded: {name} ({why})", file=out, flush=True)
        if stop["signal"] is None:
            print(f"ready: HTTP {server.http_url}  gRPC {server.grpc_url}  metrics {server.metrics_url}", file=out,
                  flush=True)
        while stop["signal"] is None:
            if server.proc is not None and server.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with code {server.proc.returncode}:\n{server.log_tail()}")
            time.sleep(0.2)
        print(f"stopping tritonserver (signal {stop['signal']})", file=out, flush=True)
        return 0
    finally:
        code = server.stop()
        print(f"tritonserver stopped (exit code {code})", file=out, flush=True)
        if code not in (0, None) and server.last_log_tail:
            print(f"tritonserver log (last lines):\n{server.last_log_tail}", file=out, flush=True)
        for s, h in old.items():
            signal.signal(s, h)
