"""Running one handler: a Python callable (optionally in a child process so a timeout can stop it) or a shell
command that reads the job's JSON on stdin and prints its result."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from octoqueue.errors import ConfigurationError, JobTimeout, PermanentError, RetryableError
from octoqueue.job import Job

Handler = Callable[..., Any]


def load_handler(spec: str) -> Handler:
    """Import ``module:function`` (or ``path/to/file.py:function``) and return the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"handler {spec!r} must look like module:function")
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            path = Path(module_name)
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[path.stem] = module
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(f"cannot import handler module {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigurationError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise ConfigurationError(f"handler {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


def wants_job(fn: Handler) -> bool:
    """True when ``fn`` takes a second positional parameter: it is then called as ``fn(data, job)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


def call(fn: Handler, job: Job) -> Any:
    return fn(job.data, job) if wants_job(fn) else fn(job.data)


class CommandHandler:
    """A shell command as a handler: job data as JSON on stdin, stdout as the result (JSON when it parses,
    else the text). Exit status 0 is success; 75 (EX_TEMPFAIL) asks for a retry even with ``--on-failure fail``;
    any other status is a failure whose error is the tail of stderr. The command sees ``OCTOQUEUE_JOB_ID``,
    ``OCTOQUEUE_JOB_ATTEMPT``, ``OCTOQUEUE_JOB_TITLE`` and ``OCTOQUEUE_JOB_TYPE`` in its environment."""

    RETRY_EXIT = 75

    def __init__(self, command: str) -> None:
        if not command.strip():
            raise ConfigurationError("the handler command is empty")
        self.command = command
        self._running: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CommandHandler({self.command!r})"

    def run(self, job: Job, timeout: float | None) -> Any:
        env = dict(os.environ)
        env.update(
            OCTOQUEUE_JOB_ID=str(job.id),
            OCTOQUEUE_JOB_ATTEMPT=str(job.attempt),
            OCTOQUEUE_JOB_TITLE=job.title,
            OCTOQUEUE_JOB_TYPE=job.type or "",
        )
        proc = subprocess.Popen(
            self.command,
            shell=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        with self._lock:
            self._running[job.id] = proc
        try:
            payload = json.dumps(job.data, ensure_ascii=False).encode()
            out, err = proc.communicate(payload, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise JobTimeout(f"the command ran past its timeout of {timeout:g} s and was killed") from None
        finally:
            with self._lock:
                self._running.pop(job.id, None)
        if proc.returncode != 0:
            tail = err.decode(errors="replace").strip()[-2000:] or "(no output on stderr)"
            message = f"command exited with status {proc.returncode}: {tail}"
            if proc.returncode == self.RETRY_EXIT:
                raise RetryableError(message)
            if proc.returncode < 0:
                message = f"command was killed by signal {-proc.returncode}: {tail}"
            raise CommandFailed(message)
        text = out.decode(errors="replace")
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text.rstrip("\n")

    def kill(self, job_id: int) -> None:
        with self._lock:
            proc = self._running.get(job_id)
        if proc is not None:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class ChildRunner:
    """Runs a Python handler in a forked child process, so a timeout or a lost lease can really stop it."""

    def __init__(self) -> None:
        self._children: dict[int, multiprocessing.process.BaseProcess] = {}
        self._lock = threading.Lock()

    def run(self, fn: Handler, job: Job, timeout: float | None) -> Any:
        ctx = multiprocessing.get_context("fork")
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child_main, args=(fn, job, sender), daemon=True)
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a threaded process; the child only runs the handler and
            # writes one message to its pipe, touching none of the parent's locks.
            warnings.simplefilter("ignore", DeprecationWarning)
            child.start()
        sender.close()
        with self._lock:
            self._children[job.id] = child
        try:
            if not receiver.poll(timeout):
                child.kill()
                child.join()
                raise JobTimeout(f"the handler ran past its timeout of {timeout:g} s and was stopped")
            try:
                outcome = receiver.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"the handler's process died (exit code {child.exitcode})") from None
            child.join()
        finally:
            receiver.close()
            with self._lock:
                self._children.pop(job.id, None)
        kind = outcome[0]
        if kind == "ok":
            return outcome[1]
        _, error_kind, message, delay = outcome
        if error_kind == "permanent":
            raise PermanentError(message)
        if error_kind == "retryable":
            raise RetryableError(message, delay=delay)
        raise RuntimeError(message)

    def kill(self, job_id: int) -> None:
        with self._lock:
            child = self._children.get(job_id)
        if child is not None and child.is_alive():
            child.kill()


def _child_main(fn: Handler, job: Job, sender: Any) -> None:
    try:
        result = call(fn, job)
        json.dumps(result)  # fail here, with a clear message, rather than in the parent
        sender.send(("ok", result))
    except PermanentError as exc:
        sender.send(("error", "permanent", describe(exc), None))
    except RetryableError as exc:
        sender.send(("error", "retryable", describe(exc), exc.delay))
    except BaseException as exc:
        sender.send(("error", "error", describe(exc, with_trace=True), None))
    finally:
        sender.close()


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


class CommandFailed(RuntimeError):
    """A handler command exited non-zero or was killed; the message carries its stderr."""


def describe(exc: BaseException, with_trace: bool = False) -> str:
    """``Type: message``, plus the last frames of the handler's own code (octoqueue's frames left out)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if with_trace and not isinstance(exc, CommandFailed) and exc.__traceback__ is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
        if frames:
            text += "\n" + "".join(traceback.format_list(frames[-3:])).rstrip()
    return text
