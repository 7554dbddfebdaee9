"""Static check: every SQL statement in the deployed code is a constant; values go in as parameters.

Walks the AST of ``functions/`` and finds every call that sends SQL (``run``, ``execute_simple``,
``execute_unnamed``, ``prepare`` and the ledger's own ``_run``). The SQL argument must be a string
literal or a name bound to one at module level, never ``%``/``+`` formatting or ``.format()``. Two
exceptions: DDL, which PostgreSQL cannot parameterise (``CREATE ROLE``, ``GRANT``), may be an f-string
whose every interpolated value was quoted by ``pg8000.native.identifier`` or ``literal`` in the same
function; and the migration runner executes the SQL files shipped in the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SQL_METHODS = {"run": 0, "execute_simple": 0, "execute_unnamed": 0, "prepare": 0, "_run": 1}
QUOTERS = {"identifier", "literal"}
# (file, source of the argument): SQL that is not a literal but cannot carry user data.
ALLOWED = {("telemetry_adapter/ledger/migrations.py", "migration.sql")}


def _constants(tree: ast.Module) -> set[str]:
    """Module-level names assigned a plain string literal (or a concatenation of literals)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and _is_literal(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return False


def _is_quoted(node: ast.expr) -> bool:
    """``identifier(x)``/``literal(x)``, or a ``", ".join(...)`` of such calls."""
    if not isinstance(node, ast.Call):
        return False
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if name in QUOTERS:
        return True
    if name == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.GeneratorExp | ast.ListComp):
        return _is_quoted(node.args[0].elt)
    return False


def _quoted_names(scope: ast.AST) -> set[str]:
    """Names assigned a quoted value anywhere in ``scope``."""
    return {
        node.targets[0].id
        for node in ast.walk(scope)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and _is_quoted(node.value)
    }


def _quoted_fstring(node: ast.expr, quoted: set[str]) -> bool:
    if not isinstance(node, ast.JoinedStr):
        return False
    values = [part.value for part in node.values if isinstance(part, ast.FormattedValue)]
    return all(isinstance(value, ast.Name) and value.id in quoted for value in values)


def sql_violations(source: str, filename: str) -> list[str]:
    """Every SQL-sending call whose statement is not a constant, as ``file:line: source``."""
    tree = ast.parse(source)
    constants = _constants(tree)
    enclosing: dict[ast.AST, ast.AST] = {}
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(function):
                enclosing[inner] = function  # inner functions come later in the walk and win
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        position = SQL_METHODS.get(node.func.attr)
        if position is None or len(node.args) <= position:
            continue
        scope = enclosing.get(node)
        quoted = _quoted_names(scope) if scope is not None else set()
        argument = node.args[position]
        text = ast.unparse(argument)
        if _is_literal(argument) or (isinstance(argument, ast.Name) and argument.id in constants):
            continue
        if _quoted_fstring(argument, quoted):
            continue
        if (filename, text) in ALLOWED:
            continue
        if node.func.attr == "run" and isinstance(argument, ast.Name) and argument.id == "sql":
            continue  # Ledger._run passes its own ``sql`` parameter on; its callers are checked
        found.append(f"{filename}:{node.lineno}: {text}")
    return found


def _sources() -> dict[str, str]:
    return {str(path.relative_to(FUNCTIONS)): path.read_text() for path in sorted(FUNCTIONS.rglob("*.py"))}


def test_the_deployed_code_sends_only_constant_sql() -> None:
    sources = _sources()
    assert "telemetry_adapter/ledger/repository.py" in sources
    violations = [v for name, source in sources.items() for v in sql_violations(source, name)]
    assert violations == []


def test_the_ledger_statements_are_checked_and_all_use_parameters() -> None:
    source = (FUNCTIONS / "telemetry_adapter/ledger/repository.py").read_text()
    tree = ast.parse(source)
    statements = [name for name in _constants(tree) if name.endswith("_SQL")]
    assert len(statements) >= 3
    namespace: dict[str, object] = {}
    exec(compile(ast.Module([n for n in tree.body if isinstance(n, ast.Assign)], []), "<sql>", "exec"), namespace)
    for name in statements:
        text = str(namespace[name])
        assert "{" not in text or "}" not in text.split("{", 1)[1], f"{name} looks like a template"
        assert "%s" not in text
        assert ":" in text  # values arrive as :named parameters


def test_the_checker_catches_formatted_sql() -> None:
    bad = """
TABLE = "submission_ledger"
def f(connection, user_id, ledger):
    connection.run(f"SELECT * FROM t WHERE id = '{user_id}'")
    connection.run("SELECT * FROM t WHERE id = '%s'" % user_id)
    connection.run("SELECT * FROM t WHERE id = '{}'".format(user_id))
    connection.run("SELECT * FROM " + TABLE)
    ledger._run("claim", "DELETE FROM " + user_id)
    connection.run(TABLE)
    connection.run("SELECT 1")
"""
    assert [line.split(":")[1] for line in sql_violations(bad, "bad.py")] == ["4", "5", "6", "7", "8"]
