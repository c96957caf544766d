"""Runs inside the sandbox (started by rewards.code, after rewards/code_wire.py's text): build the walls,
run the program, then answer the trusted checker's calls with plain values.

It never sees the tests and never decides anything: the checker (rewards/code_checker.py, another process
outside this sandbox) runs the tests and asks this process only "call NAME with these arguments". So a
program that patches builtins, reads frames, prints tokens or exits early changes nothing the checker trusts.
It reads one JSON request from stdin so that nothing the program could read lies on disk.
"""


def _mountpoints() -> list[tuple[str, int]]:
    """(mount point, locked per-mount flags to keep) for every mount this process sees."""
    import re

    keep = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21}
    out = []
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        out.append((point, sum(keep.get(o, 0) for o in fields[5].split(","))))
    return out


_SYSTEM = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/dev", "/proc", "/sys",
           "/tmp", "/var/tmp")


def _kept_paths() -> set[str]:
    """What the program may see: the system directories and this interpreter's own installation."""
    import os
    import sys

    paths = list(_SYSTEM) + [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
                             os.path.dirname(os.path.realpath(sys.executable))]
    return {os.path.realpath(p) for p in paths if p and os.path.isdir(p)}


def _build_walls(work: str) -> None:
    """Private mounts: everything read-only; every directory that is neither a system directory nor part
    of the interpreter hidden under an empty tmpfs (datasets, checkpoints, home directories, the repo); the
    work directory writable at /tmp, /var/tmp and /dev/shm."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    ms_rdonly, ms_nosuid, ms_nodev, ms_remount, ms_bind, ms_rec, ms_private = 1, 2, 4, 32, 4096, 16384, 1 << 18

    def mount(src, target, flags, fstype=None, data=None):
        if libc.mount(src and src.encode(), target.encode(), fstype, flags, data):
            raise OSError(ctypes.get_errno(), f"sandbox: mount {src} -> {target} (flags {flags:#x}) failed")

    mount(None, "/", ms_rec | ms_private)
    # The new /proc of our PID namespace (unshare --mount-proc) shows only sandbox processes.
    writable = [t for t in ("/var/tmp", "/dev/shm", "/tmp") if os.path.isdir(t)]
    for point, locked in _mountpoints():
        if point not in writable:  # a mount that cannot be made read-only stays a hole: refuse to run
            mount(None, point, ms_remount | ms_bind | ms_rdonly | locked)
    keep = _kept_paths()
    walked = {os.path.dirname(p) for p in keep}
    while (up := {os.path.dirname(d) for d in walked} - walked):
        walked |= up
    for d in sorted(walked):
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if path in keep or path in walked or os.path.islink(path):
                continue
            if os.path.isdir(path):
                mount("tmpfs", path, ms_rdonly | ms_nosuid | ms_nodev, b"tmpfs", b"size=4k")
            else:
                mount("/dev/null", path, ms_bind)
    for target in writable:  # /tmp last: `work` lives under it
        mount(work, target, ms_bind)
    locked = dict(_mountpoints())  # the last mount at each point wins: our binds
    for target in writable:  # a bind copies the read-only flag of the mount it came from: lift it
        mount(None, target, ms_remount | ms_bind | locked[target])


def _drop_power(req: dict) -> None:
    if not req["namespaces"]:
        return  # weak sandbox: ctypes must not be imported before the program runs (see _audit_hook)
    import ctypes
    import os
    import sys

    libc = ctypes.CDLL(None, use_errno=True)
    if req["uid"] is not None:  # root: a private uid (drops every capability)
        os.setgroups([])
        os.setgid(req["uid"])
        os.setuid(req["uid"])
    elif req["userns"]:  # unprivileged: a nested user namespace owns nothing, so no mount can be undone
        if libc.unshare(0x10000000):  # CLONE_NEWUSER
            raise OSError(ctypes.get_errno(), "sandbox: nested user namespace failed")
    libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid binary gives power back
    del sys.modules["ctypes"]  # importing it again is an audited event the weak sandbox refuses


def _audit_hook(work: str, extra_allowed: tuple, weak: bool):
    """Defence in depth (the walls above are the real guard): refuse sockets, signals, subprocesses and
    writes outside the work directory at the Python level. In the weak sandbox, where this hook is the only
    guard, also refuse importing the modules that run processes or touch memory without an audit event
    (`_posixsubprocess.fork_exec`, ctypes); a program can still disable the hook itself (docs/reliability.md)."""
    import os

    allowed = (os.path.realpath(work) + os.sep,) + extra_allowed
    blocked = {"socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo", "os.kill", "os.killpg",
               "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "ctypes.dlopen", "os.setuid",
               "pty.spawn"}
    write_events = {"os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "os.chmod", "os.chown", "os.truncate",
                    "os.mkdir", "os.symlink", "os.link", "os.utime", "shutil.move", "shutil.copyfile"}

    def inside(path) -> bool:
        if isinstance(path, int):
            return True
        full = os.path.realpath(os.path.join(work, os.fsdecode(path)))
        return (full + os.sep).startswith(allowed) or full == "/dev/null"

    unaudited = {"_posixsubprocess", "_ctypes", "ctypes", "_testcapi", "_testinternalcapi", "_xxsubinterpreters"}

    def hook(event, args):
        if weak and event == "import" and str(args[0]).partition(".")[0] in unaudited:
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed in the weak sandbox")
        if event in blocked or event.startswith("socket.") and event not in ("socket.__new__", "socket.gethostname"):
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and args[0] is not None:
            mode, flags = args[1], args[2] or 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or flags & (
                os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)
            if writes and not inside(args[0]):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the work directory is not allowed")
        elif event in write_events and args and not inside(args[0]):
            raise PermissionError(f"sandbox: {event} on {args[0]!r} outside the work directory is not allowed")

    return hook


def _serve(ns: dict, rfd: int, wfd: int) -> None:
    """Answer {"op": "call"|"attr", "t": target, ...} frames until the checker hangs up."""
    handles: dict[int, object] = {}

    def handle(obj):
        handles[len(handles)] = obj
        try:
            text = repr(obj)[:200]
        except BaseException:
            text = "<unrepresentable>"
        return ["h", len(handles) - 1, f"{type(obj).__module__}.{type(obj).__qualname__}", text]

    def resolve(hid, _type, _repr):
        return ns[hid] if type(hid) is str else handles[hid]

    while True:
        try:
            req = recv(rfd)
        except WireError:
            return
        try:
            kind, key = req["t"]
            target = ns[key] if kind == "n" else handles[key]
            if req["op"] == "attr":
                result = getattr(target, req["n"])
            elif req["op"] == "setattr":
                result = setattr(target, req["n"], decode(req["v"], resolve))
            else:
                args = [decode(a, resolve) for a in req["a"]]
                kwargs = {k: decode(v, resolve) for k, v in req["k"]}
                result = target(*args, **kwargs)
            reply = {"v": encode(result, handle)}
        except BaseException as e:  # SystemExit too: a program that exits inside a call just failed it
            reply = {"x": [type(e).__name__, str(e)[:500]]}
        send(wfd, reply)


def _report_names(ns: dict) -> dict:
    """What the checker needs to stand in for the program's globals: plain values as values, modules by
    name, everything else (functions, classes, objects) as a reference it reaches by name."""
    import types

    class NotPlain(Exception):
        pass

    def not_plain(obj):
        raise NotPlain

    names = {}
    for key, value in list(ns.items()):
        if key.startswith("__"):
            continue
        if type(value) is types.ModuleType:
            names[key] = ["m", str(value.__name__)]
            continue
        try:
            names[key] = ["value", encode(value, not_plain)]
        except (NotPlain, WireError, RecursionError):
            names[key] = ["ref"]
    return names


def _main() -> None:
    import collections
    import json
    import os
    import sys
    import traceback

    global _DICT_LIKE
    _DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)
    req = json.loads(sys.stdin.read())
    work, (rfd, wfd), walls = req["work"], req["fds"], req["namespaces"]
    try:
        if walls:
            _build_walls(work)
            work = "/tmp"  # the work directory is now seen at /tmp (and the real one is hidden under it)
            os.environ["HOME"] = os.environ["TMPDIR"] = work
        _drop_power(req)
        os.chdir(work)
        sys.addaudithook(_audit_hook(work, ("/tmp/", "/var/tmp/", "/dev/shm/") if walls else (), not walls))
    except Exception as e:  # a verifier failure, not the program's: the checker reports status "error"
        send(wfd, {"ready": False, "error": f"{type(e).__name__}: {e}"})
        os._exit(1)
    send(wfd, {"ready": True})  # from here on, whatever goes wrong is the program's doing
    ns = {"__name__": "__main__"}
    try:
        exec(compile(req["program"], "solution.py", "exec"), ns)
    except BaseException as e:
        traceback.print_exc()
        sys.stderr.flush()
        send(wfd, {"loaded": False, "error": f"{type(e).__name__}: {str(e)[:500]}"})
        os._exit(1)
    sys.stdout.flush()
    send(wfd, {"loaded": True, "names": _report_names(ns)})
    _serve(ns, rfd, wfd)
    sys.stdout.flush()
    os._exit(0)


_main()
