// sandbox/harness_py.c — the Python program that runs one call-based test inside the jail.
// defines: sandbox_harness_py
//
// It reads {"fn": name, "args": [...]} (JSON) on stdin, imports solution.py from its working
// directory (/work here; wherever a SandboxFusion service puts request files when it runs there),
// calls the function (a module function, or a method of Solution()), and writes
// json.dumps(result) on the original stdout; the
// program's own prints are sent to stderr so they cannot mix with the result. The comparison with
// the expected value happens outside the sandbox: the expected outputs never enter it, and a
// result is only the serialized JSON text, so objects that claim to equal everything, exit(0)
// before returning, or a patched json module cannot turn into a pass.
const char sandbox_harness_py[] =
    "import sys, os, json, traceback\n"
    "def _main():\n"
    "    out = os.fdopen(os.dup(1), 'w')\n"
    "    os.dup2(2, 1)\n"
    "    dumps = json.dumps\n"
    "    call = json.loads(sys.stdin.read())\n"
    "    name, args = call['fn'], call['args']\n"
    "    sys.stdin = open(os.devnull)\n"
    "    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))\n"
    "    import importlib.util\n"
    "    spec = importlib.util.spec_from_file_location('solution', os.path.join(os.getcwd(), 'solution.py'))\n"
    "    mod = importlib.util.module_from_spec(spec)\n"
    "    sys.modules['solution'] = mod\n"
    "    spec.loader.exec_module(mod)\n"
    "    fn = getattr(mod, name, None)\n"
    "    if fn is None and isinstance(getattr(mod, 'Solution', None), type):\n"
    "        fn = getattr(mod.Solution(), name, None)\n"
    "    if not callable(fn):\n"
    "        sys.stderr.write('harness: no function %r in the solution\\n' % name)\n"
    "        os._exit(3)\n"
    "    result = fn(*args)\n"
    "    text = dumps(result)\n"
    "    out.write(text)\n"
    "    out.flush()\n"
    "    os._exit(0)\n"
    "try:\n"
    "    _main()\n"
    "except BaseException:\n"
    "    traceback.print_exc()\n"
    "    sys.stderr.flush()\n"
    "    os._exit(1)\n";
