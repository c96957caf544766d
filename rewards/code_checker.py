"""The trusted checker (started by rewards.code, after rewards/code_wire.py's text): runs the tests in a clean
interpreter that never runs the program, and writes the verdict.

Every name the program defines becomes a proxy here; calling it sends the plain arguments to the sandboxed
program and gets back a plain value (exact int/float/str/... built by code_wire.decode) or an opaque handle.
The tests' asserts, comparisons, loops and expected values all live in this process, with its own builtins,
so the program cannot forge a comparison, skip an assert, or see an expected value. A handle (an object
of any other type: an int subclass, an always-equal object) refuses comparison and truth tests.
"""


class ProgramGone(BaseException):
    """The sandboxed program hung up or broke the wire (a BaseException: tests cannot catch it)."""


class RemoteError(Exception):
    """The program raised an exception whose type is not a builtin one."""


class Remote:
    """A function or object that lives in the sandbox; plain values never come back as one of these."""

    __slots__ = ("_target", "_type", "_repr")

    def __init__(self, target, type_name, text):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_repr", text)

    def __call__(self, *args, **kwargs):
        return _rpc({"op": "call", "t": self._target, "a": [_encode_arg(a) for a in args],
                     "k": [[k, _encode_arg(v)] for k, v in kwargs.items()]})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _rpc({"op": "attr", "t": self._target, "n": name})

    def __setattr__(self, name, value):  # tests build program objects: `root.left = Node(2)`
        _rpc({"op": "setattr", "t": self._target, "n": name, "v": _encode_arg(value)})

    def __repr__(self):
        return self._repr

    def _refuse(self, *_):
        raise TypeError(f"the program returned a {self._type} object, not a plain value "
                        "(int/float/complex/str/bytes/bool/None/list/tuple/dict/set): it cannot be compared")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = __contains__ = _refuse
    __hash__ = object.__hash__


_FDS = {}


def _encode_arg(x):
    def handle(obj):
        if type(obj) is Remote:  # one of the program's own objects goes back as a reference
            return ["h", obj._target[1], "", ""]
        raise TypeError(f"cannot pass a {type(obj).__name__} to the program: only plain values and the "
                        "program's own objects can cross the sandbox wall")

    return encode(x, handle)


def _rpc(req):
    import builtins

    try:
        send(_FDS["w"], req)
        reply = recv(_FDS["r"])
        if type(reply) is not dict:
            raise WireError("reply is not an object")
        if "v" in reply:
            return decode(reply["v"], lambda hid, t, r: Remote(("h", hid), t, r))
        name, msg = reply["x"]
    except (WireError, OSError, KeyError, TypeError, ValueError) as e:
        raise ProgramGone(f"the program process broke the call protocol: {type(e).__name__}: {e}") from None
    exc = getattr(builtins, str(name), None)
    if isinstance(exc, type) and issubclass(exc, Exception):
        raise exc(str(msg))
    raise RemoteError(f"{name}: {msg}")


def _targets(tree) -> set:
    """Names the tests judge: `assert NAME(literals) <op> ...` and `check(NAME)` (or any module-level call
    handed a bare name, as EvalPlus differential programs do). Only these may shadow a
    builtin (MBPP asks for functions named `sum` or `max`); any other builtin the program redefines
    (`len` in `len(f(x)) == 3` or `sorted(res) == [...]`, `abs`, `isinstance`, ...) stays the real one here."""
    import ast

    def literal(node) -> bool:
        try:
            ast.literal_eval(node)
            return True
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return False

    out = set()
    for node in ast.walk(tree):
        call = node.test.left if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and all(
                literal(a) for a in call.args + [k.value for k in call.keywords]):
            out.add(call.func.id)
    for stmt in tree.body:  # `check(NAME)` at module level: the function handed to the tests is judged
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            out.update(a.id for a in stmt.value.args if isinstance(a, ast.Name))
    return out


def _namespace(names: dict, targets: set) -> dict:
    """The tests' globals: a proxy for each function or object of the program, plain values as values,
    the program's module imports imported here afresh."""
    import builtins
    import importlib
    import sys

    ns = {"__name__": "__main__", "__builtins__": builtins}
    for key, spec in names.items():
        if type(key) is not str or key.startswith("__") or type(spec) is not list or (
                hasattr(builtins, key) and key not in targets):
            continue
        module = key if key in sys.stdlib_module_names and key not in targets else (
            spec[1] if spec[:1] == ["m"] and type(spec[1]) is str else None)
        if module is not None:  # `math` is the real math module here, whatever the program bound to it
            if module.partition(".")[0] in sys.stdlib_module_names:
                try:
                    ns[key] = importlib.import_module(module)
                except Exception:  # a module this interpreter lacks: the tests do without
                    pass
        elif spec[:1] == ["value"]:
            ns[key] = decode(spec[1], lambda *_: None)
        else:
            ns[key] = Remote(("n", key), "program object", key)
    return ns


def _verdict(req) -> dict:
    import ast
    import traceback

    _FDS.update(r=req["fds"][0], w=req["fds"][1])
    try:
        tree = ast.parse(req["tests"], "tests.py")
        code = compile(tree, "tests.py", "exec")
    except (SyntaxError, ValueError) as e:
        return {"status": "error", "detail": f"the tests do not compile: {e}"}
    try:
        ready = recv(_FDS["r"])
    except (WireError, OSError) as e:
        return {"status": "error", "detail": f"the sandbox did not start: {e}"}
    if type(ready) is not dict or ready.get("ready") is not True:
        error = ready.get("error") if type(ready) is dict else ready
        return {"status": "error", "detail": f"the sandbox could not be built: {str(error)[:500]}"}
    try:
        hello = recv(_FDS["r"])
        if type(hello) is not dict or hello.get("loaded") is not True or type(hello.get("names")) is not dict:
            error = hello.get("error") if type(hello) is dict else None
            return {"status": "failed", "detail": f"the program did not load: {str(error)[:500]}"}
        ns = _namespace(hello["names"], _targets(tree))
    except (WireError, OSError, TypeError) as e:
        return {"status": "failed", "detail": f"the program process ended before the tests: {e}"}
    try:
        exec(code, ns)
    except BaseException as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == "tests.py"]
        where = "".join(traceback.format_list(frames[-2:]))
        return {"status": "failed", "detail": where + "".join(traceback.format_exception_only(type(e), e))}
    return {"status": "passed", "detail": ""}


def _main() -> None:
    import ctypes
    import json
    import os
    import resource
    import sys

    libc = ctypes.CDLL(None)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: a same-uid process cannot read our memory
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG SIGKILL: never outlive the caller
    req = json.loads(sys.stdin.read())
    for which, value in req["limits"]:
        resource.setrlimit(which, (value, value))
    sys.path[:] = req["path"]
    verdict = _verdict(req)
    verdict["detail"] = verdict["detail"][-1500:]
    os.write(req["fds"][2], json.dumps(verdict).encode())
    os._exit(0)


_main()
