"""Runs inside the sandbox (started by rewards.code): drop privileges, arm guards, run program + tests.

It reads one JSON request from stdin so that nothing the program could read lies on disk. It is run
with `python -I -c <this file's source>`: it must import only the standard library.
Only if the tests finish does it write the secret token to fd 1; rewards.code checks for it, so a
program that exits early (`sys.exit(0)`, `os._exit(0)`) does not pass.
"""


def _main() -> None:
    import json
    import os
    import sys

    req = json.loads(sys.stdin.read())
    token, work = req.pop("token"), req["work"]
    if req["mount_tmp"]:  # private /tmp, /var/tmp, /dev/shm: the program cannot touch the shared ones
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for target in ("/var/tmp", "/dev/shm", "/tmp"):  # /tmp last: `work` lives under it
            if os.path.isdir(target) and libc.mount(work.encode(), target.encode(), None, 4096 | 16384, None):
                raise OSError(ctypes.get_errno(), f"sandbox: cannot bind the work directory over {target}")
        work = "/tmp"  # the work directory is now seen at /tmp (and the real one is hidden under it)
        os.environ["HOME"] = os.environ["TMPDIR"] = work
    if req["uid"] is not None:
        os.setgroups([])
        os.setgid(req["uid"])
        os.setuid(req["uid"])
    os.chdir(work)
    allowed = (os.path.realpath(work) + os.sep, "/tmp/", "/var/tmp/", "/dev/shm/") if req["mount_tmp"] else (
        os.path.realpath(work) + os.sep,)
    blocked = {"socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo", "os.kill", "os.killpg",
               "os.system", "subprocess.Popen", "os.posix_spawn", "os.exec", "ctypes.dlopen", "os.setuid",
               "pty.spawn"}
    write_events = {"os.remove", "os.rmdir", "os.rename", "shutil.rmtree", "os.chmod", "os.chown", "os.truncate",
                    "os.mkdir", "os.symlink", "os.link", "os.utime", "shutil.move", "shutil.copyfile"}

    def inside(path) -> bool:
        if isinstance(path, int):
            return True
        full = os.path.realpath(os.path.join(work, os.fsdecode(path)))
        return (full + os.sep).startswith(allowed) or full in ("/dev/null",)

    def hook(event, args):
        # Defence in depth: the namespaces and the unprivileged uid are the real walls.
        if event in blocked or event.startswith("socket.") and event != "socket.__new__" and event != "socket.gethostname":
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open" and args[0] is not None:
            mode, flags = args[1], args[2] or 0
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or flags & (os.O_WRONLY | os.O_RDWR
                                                                                           | os.O_CREAT | os.O_TRUNC)
            if writes and not inside(args[0]):
                raise PermissionError(f"sandbox: writing {args[0]!r} outside the work directory is not allowed")
        elif event in write_events and args and not inside(args[0]):
            raise PermissionError(f"sandbox: {event} on {args[0]!r} outside the work directory is not allowed")

    sys.addaudithook(hook)
    namespace = {"__name__": "__main__"}
    exec(compile(req["program"], "solution.py", "exec"), namespace)
    exec(compile(req["tests"], "tests.py", "exec"), namespace)
    sys.stdout.flush()
    os.write(1, ("\n" + token + "\n").encode())
    os._exit(0)


_main()
