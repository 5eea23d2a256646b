import Foundation

/// The files that change how Python or its test runner starts, which a change may add or
/// modify only with a person's approval (`startup_paths` in service.yaml, adr/0069): branch
/// code that runs before the first test can end the run with any exit status it likes.
///
/// A rule is one of
/// - `module:NAME`: a top-level module or package NAME (`NAME.py`, `NAME/…`, `NAME.*.so`,
///   `NAME.pyc`), which `python3 -m NAME` and `import NAME` find before the standard library
///   (the checkout is the working directory, so it is `sys.path[0]`);
/// - `module:stdlib`: every name in `PythonStartup.stdlibModules` and `testRunners`;
/// - a name without `/` (`conftest.py`, `*.pth`, `*` and `?` as in the shell): a file of that
///   name in any folder;
/// - a path with `/` (a trailing `/` means a folder), as in `protected_paths`.
public enum PythonStartup {
    /// The rules when service.yaml names none.
    public static let defaultRules = ["module:stdlib", "conftest.py", "sitecustomize.py", "usercustomize.py", "*.pth"]

    /// Whether repository path `path` is one of `rules`.
    public static func matches(_ path: String, rules: [String]) -> Bool {
        let components = path.split(separator: "/").map(String.init)
        guard let top = components.first, let base = components.last else { return false }
        let module = components.count > 1 ? top : moduleName(top)
        return rules.contains { rule in
            if rule == "module:stdlib" { return module.map { stdlibModules.contains($0) || testRunners.contains($0) } ?? false }
            if rule.hasPrefix("module:") { return module == String(rule.dropFirst("module:".count)) }
            if !rule.contains("/") { return fnmatch(rule, base, 0) == 0 }
            return rule.hasSuffix("/") ? path.hasPrefix(rule) : (path == rule || path.hasPrefix(rule + "/"))
        }
    }

    /// The module a top-level file defines (`os.py`, `os.pyc`, `os.cpython-311-x86_64-linux-gnu.so`: `os`), nil for others.
    static func moduleName(_ file: String) -> String? {
        for suffix in [".py", ".pyc", ".pyw"] where file.hasSuffix(suffix) { return String(file.dropLast(suffix.count)) }
        if file.hasSuffix(".so") || file.hasSuffix(".pyd"), let dot = file.firstIndex(of: ".") { return String(file[..<dot]) }
        return nil
    }

    /// A rule's error, nil when it is well formed.
    static func problem(_ rule: String) -> String? {
        if rule.hasPrefix("module:") {
            let name = rule.dropFirst("module:".count)
            return !name.isEmpty && name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) ? nil : "'\(rule)' names no module"
        }
        return rule.isEmpty || rule.hasPrefix("/") || rule.split(separator: "/").contains("..") ? "'\(rule)' must be a relative path inside the repository" : nil
    }

    /// Test runners and their plug-in machinery, held like the standard library.
    public static let testRunners: Set<String> = ["pytest", "_pytest", "py", "pluggy", "nose", "nose2", "coverage", "unittest2", "xmlrunner"]

    /// Python 3.11's `sys.stdlib_module_names` (checked in, so that the rule does not depend on the host's Python).
    public static let stdlibModules: Set<String> = [
        "__future__", "_abc", "_aix_support", "_ast", "_asyncio", "_bisect", "_blake2", "_bootsubprocess", "_bz2", "_codecs",
        "_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr", "_codecs_tw", "_collections",
        "_collections_abc", "_compat_pickle", "_compression", "_contextvars", "_crypt", "_csv", "_ctypes", "_curses",
        "_curses_panel", "_datetime", "_dbm", "_decimal", "_elementtree", "_frozen_importlib", "_frozen_importlib_external",
        "_functools", "_gdbm", "_hashlib", "_heapq", "_imp", "_io", "_json", "_locale", "_lsprof", "_lzma", "_markupbase", "_md5",
        "_msi", "_multibytecodec", "_multiprocessing", "_opcode", "_operator", "_osx_support", "_overlapped", "_pickle",
        "_posixshmem", "_posixsubprocess", "_py_abc", "_pydecimal", "_pyio", "_queue", "_random", "_scproxy", "_sha1", "_sha256",
        "_sha3", "_sha512", "_signal", "_sitebuiltins", "_socket", "_sqlite3", "_sre", "_ssl", "_stat", "_statistics", "_string",
        "_strptime", "_struct", "_symtable", "_thread", "_threading_local", "_tkinter", "_tokenize", "_tracemalloc", "_typing",
        "_uuid", "_warnings", "_weakref", "_weakrefset", "_winapi", "_zoneinfo", "abc", "aifc", "antigravity", "argparse",
        "array", "ast", "asynchat", "asyncio", "asyncore", "atexit", "audioop", "base64", "bdb", "binascii", "bisect", "builtins",
        "bz2", "cProfile", "calendar", "cgi", "cgitb", "chunk", "cmath", "cmd", "code", "codecs", "codeop", "collections",
        "colorsys", "compileall", "concurrent", "configparser", "contextlib", "contextvars", "copy", "copyreg", "crypt", "csv",
        "ctypes", "curses", "dataclasses", "datetime", "dbm", "decimal", "difflib", "dis", "distutils", "doctest", "email",
        "encodings", "ensurepip", "enum", "errno", "faulthandler", "fcntl", "filecmp", "fileinput", "fnmatch", "fractions",
        "ftplib", "functools", "gc", "genericpath", "getopt", "getpass", "gettext", "glob", "graphlib", "grp", "gzip", "hashlib",
        "heapq", "hmac", "html", "http", "idlelib", "imaplib", "imghdr", "imp", "importlib", "inspect", "io", "ipaddress",
        "itertools", "json", "keyword", "lib2to3", "linecache", "locale", "logging", "lzma", "mailbox", "mailcap", "marshal",
        "math", "mimetypes", "mmap", "modulefinder", "msilib", "msvcrt", "multiprocessing", "netrc", "nis", "nntplib", "nt",
        "ntpath", "nturl2path", "numbers", "opcode", "operator", "optparse", "os", "ossaudiodev", "pathlib", "pdb", "pickle",
        "pickletools", "pipes", "pkgutil", "platform", "plistlib", "poplib", "posix", "posixpath", "pprint", "profile", "pstats",
        "pty", "pwd", "py_compile", "pyclbr", "pydoc", "pydoc_data", "pyexpat", "queue", "quopri", "random", "re", "readline",
        "reprlib", "resource", "rlcompleter", "runpy", "sched", "secrets", "select", "selectors", "shelve", "shlex", "shutil",
        "signal", "site", "smtpd", "smtplib", "sndhdr", "socket", "socketserver", "spwd", "sqlite3", "sre_compile",
        "sre_constants", "sre_parse", "ssl", "stat", "statistics", "string", "stringprep", "struct", "subprocess", "sunau",
        "symtable", "sys", "sysconfig", "syslog", "tabnanny", "tarfile", "telnetlib", "tempfile", "termios", "textwrap", "this",
        "threading", "time", "timeit", "tkinter", "token", "tokenize", "tomllib", "trace", "traceback", "tracemalloc", "tty",
        "turtle", "turtledemo", "types", "typing", "unicodedata", "unittest", "urllib", "uu", "uuid", "venv", "warnings", "wave",
        "weakref", "webbrowser", "winreg", "winsound", "wsgiref", "xdrlib", "xml", "xmlrpc", "zipapp", "zipfile", "zipimport",
        "zlib", "zoneinfo",
    ]
}
