"""The second pass of ``horde convert``: rewrite the tree from what :mod:`horde.convert.analysis` found.

Every rewrite is local and checks its own preconditions; what cannot be rewritten safely is left as it
was, with a ``# horde convert: ...`` comment above its statement and a :class:`Finding` for the summary.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

from horde.convert.analysis import (
    PRIMITIVES,
    TASK_WRAPPERS,
    Analysis,
    Func,
    dotted,
    last_name,
)
from horde.convert.names import has_name, horde_module, horde_name, is_locust_module, module_exists

COMMENT_PREFIX = "# horde convert: "
_STATEMENTS = (cst.SimpleStatementLine, cst.BaseCompoundStatement)
_REMOVABLE_ROOTS = ("gevent", "time")


@dataclass(frozen=True)
class Finding:
    """One thing the converter could not do (``manual``) or wants the reader to know (a note)."""

    line: int
    message: str
    manual: bool = True


@dataclass
class ConvertResult:
    source: str
    code: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.code != self.source

    @property
    def needs_attention(self) -> bool:
        return any(f.manual for f in self.findings)


class ConvertError(ValueError):
    """The input cannot be converted at all (a syntax error): ``line`` says where."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def convert_source(source: str) -> ConvertResult:
    """Rewrite a Locust locustfile's source into horde's.

    >>> convert_source("from locust import task\\n").code
    'from horde import task\\n'
    """
    try:
        ast.parse(source)  # Python's own message and line for a syntax error
    except SyntaxError as e:
        raise ConvertError(f"syntax error: {e.msg}", e.lineno) from None
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as e:
        message = " ".join(e.message.split())
        raise ConvertError(f"syntax error: {message}", e.raw_line) from None
    wrapper = MetadataWrapper(module)
    analysis = Analysis()
    analysis.analyze(wrapper.module)
    analysis.solve()
    transformer = Transformer(analysis)
    # comments above the first statement are parsed into the module's header, not the statement
    transformer.header_comments = {line.comment.value for line in module.header if line.comment is not None}
    tree = wrapper.visit(transformer)
    context = CodemodContext()
    if transformer.need_asyncio:
        tree = add_import_asyncio(tree)
    if transformer.removable_imports:  # the scope analysis it needs is the slowest step: only when useful
        for node in transformer.removable_imports:
            RemoveImportsVisitor.remove_unused_import_by_node(context, node)
        tree = RemoveImportsVisitor(context).transform_module(tree)
    findings = sorted(set(transformer.findings), key=lambda f: (f.line, f.message))
    return ConvertResult(source, tree.code, findings)


def _is_import(stmt: cst.CSTNode, future: bool = False) -> bool:
    if not isinstance(stmt, cst.SimpleStatementLine) or not stmt.body:
        return False
    small = stmt.body[0]
    if isinstance(small, cst.ImportFrom):
        is_future = isinstance(small.module, cst.Name) and small.module.value == "__future__"
        return is_future == future
    return isinstance(small, cst.Import) and not future


def add_import_asyncio(tree: cst.Module) -> cst.Module:
    """``import asyncio`` before the first import (after the docstring and ``__future__``), once."""
    body = list(tree.body)
    for stmt in body:
        if _is_import(stmt) and isinstance(stmt, cst.SimpleStatementLine):
            small = stmt.body[0]
            if isinstance(small, cst.Import) and any(
                dotted(a.name) == "asyncio" and a.asname is None for a in small.names
            ):
                return tree
    index = 0
    for i, stmt in enumerate(body):
        if i == 0 and isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Expr):
            if isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString)):
                index = 1
                continue
        if _is_import(stmt, future=True):
            index = i + 1
            continue
        break
    first_import = next((i for i in range(index, len(body)) if _is_import(body[i])), None)
    new = cst.SimpleStatementLine([cst.Import(names=[cst.ImportAlias(name=cst.Name("asyncio"))])])
    if first_import is not None:
        index = first_import
        # the blank lines above the first import move above ``import asyncio``; its comments stay with it
        lines = list(body[index].leading_lines)
        blank = 0
        while blank < len(lines) and lines[blank].comment is None:
            blank += 1
        new = new.with_changes(leading_lines=lines[:blank])
        body[index] = body[index].with_changes(leading_lines=lines[blank:])
    elif index > 0:
        new = new.with_changes(leading_lines=[cst.EmptyLine()])
    body.insert(index, new)
    return tree.with_changes(body=body)


def _missing(module: str, name: str) -> str:
    where = module if module_exists(module) else f"{module} (no such module)"
    return f"horde has no {name} in {where}: remove it or port what it does"


def _dotted_expr(path: str) -> cst.Attribute | cst.Name:
    parts = path.split(".")
    node: cst.Attribute | cst.Name = cst.Name(parts[0])
    for part in parts[1:]:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def _comma() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _args(args: Sequence[cst.Arg]) -> list[cst.Arg]:
    """Arguments moved into a new call: single-line commas, no trailing one."""
    out = [a.with_changes(comma=_comma()) for a in args]
    if out:
        out[-1] = out[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
    return out


class Transformer(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, analysis: Analysis) -> None:
        super().__init__()
        self.a = analysis
        self.findings: list[Finding] = []
        self.need_asyncio = False
        self.removable_imports: list[cst.Import | cst.ImportFrom] = []
        self._funcs: list[Func | None] = []  # None for a lambda
        self._comments: list[list[str]] = []  # per open statement: comments to put above it
        self._skip_await: set[int] = set()
        self._in_import = 0
        self.header_comments: set[str] = set()
        # module paths bound by ``import locust...`` without ``as`` (their references are rewritten)
        self._locust_paths: set[str] = set()

    # -- findings and comments ------------------------------------------------------------------------
    def flag(self, node: cst.CSTNode, message: str, manual: bool = True) -> None:
        pos = self.get_metadata(PositionProvider, node, None)
        self.findings.append(Finding(pos.start.line if pos else 0, message, manual))
        if self._comments and message not in self._comments[-1]:
            self._comments[-1].append(message)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, _STATEMENTS):
            self._comments.append([])
            why = self.a.bad_pools.get(id(node))
            if why is not None:
                self.flag(node, why)
        return super().on_visit(node)

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        result = super().on_leave(original_node, updated_node)
        if isinstance(original_node, _STATEMENTS):
            comments = self._comments.pop()
            if comments:
                result = self._attach(result, comments)
        return result

    def _attach(self, node: Any, comments: list[str]) -> Any:
        if isinstance(node, cst.FlattenSentinel):
            first, *rest = node.nodes
            return cst.FlattenSentinel([self._attach(first, comments), *rest])
        if not isinstance(node, _STATEMENTS):
            return node
        lines = list(node.leading_lines)
        present = {line.comment.value for line in lines if line.comment is not None} | self.header_comments
        for message in comments:
            text = COMMENT_PREFIX + message
            if text not in present:
                lines.append(cst.EmptyLine(comment=cst.Comment(text)))
        return node.with_changes(leading_lines=lines)

    # -- context --------------------------------------------------------------------------------------
    @property
    def func(self) -> Func | None:
        return self._funcs[-1] if self._funcs else None

    @property
    def in_async(self) -> bool:
        f = self.func
        return f is not None and f.will_be_async

    def why_sync(self) -> str:
        f = self.func
        if not self._funcs:
            return "it runs at import time"
        if f is None:
            return "a lambda cannot await: make it an async def"
        return f.blocker or f"{f.name} stays synchronous"

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._funcs.append(self.a.by_node.get(id(node)))

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        f = self._funcs.pop()
        if f is None:
            return updated_node
        if f.will_be_async and updated_node.asynchronous is None:
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        if f.role is not None and not f.will_be_async and f.blocker is not None:
            self.flag(original_node, f"{f.role} {f.name} must be async def, but {f.blocker}")
        return updated_node

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._funcs.append(None)

    def leave_Lambda(self, original_node: cst.Lambda, updated_node: cst.Lambda) -> cst.Lambda:
        self._funcs.pop()
        return updated_node

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef) -> cst.ClassDef:
        cls = self.a.classes.get(original_node.name.value)
        if cls is not None and cls.node is original_node and cls.kind == "user" and cls.assigns_client:
            self.flag(
                original_node,
                f"{cls.name} builds its own self.client: its calls stay as they are; if they do I/O, "
                "make them async or call them with `await asyncio.to_thread(...)`",
                manual=False,
            )
        return updated_node

    # -- await ----------------------------------------------------------------------------------------
    def visit_Await(self, node: cst.Await) -> None:
        self._skip_await.add(id(node.expression))

    def visit_Call(self, node: cst.Call) -> None:
        name = last_name(node.func)
        if name in TASK_WRAPPERS and (
            (self.a.qualify(node.func) or "").startswith("asyncio.") or name == "create_task"
        ):
            for arg in node.args:
                self._skip_await.add(id(arg.value))

    def _await(self, original: cst.BaseExpression, expr: cst.BaseExpression) -> cst.Await:
        parent = self.get_metadata(ParentNodeProvider, original, None)
        tight = (isinstance(parent, (cst.Attribute, cst.Subscript)) and parent.value is original) or (
            isinstance(parent, cst.Call) and parent.func is original
        )
        lpar, rpar = list(expr.lpar), list(expr.rpar)
        if tight and not lpar:
            lpar, rpar = [cst.LeftParen()], [cst.RightParen()]
        return cst.Await(expression=expr.with_changes(lpar=[], rpar=[]), lpar=lpar, rpar=rpar)

    def _asyncio(self, name: str) -> cst.Attribute:
        self.need_asyncio = True
        return cst.Attribute(value=cst.Name("asyncio"), attr=cst.Name(name))

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        f = self.func
        kind = self.a.classify(original_node, f)
        if kind is None and f is not None:
            ref = self.a.call_ref(original_node, f)
            if ref is not None and self.a.call_is_async(ref, f):
                kind = "call"
        if kind is None:
            return updated_node
        handler = getattr(self, f"_call_{kind}")
        result: cst.BaseExpression = handler(original_node, updated_node)
        return result

    def _must_await(self, original: cst.Call, new: cst.BaseExpression, what: str) -> cst.BaseExpression:
        if id(original) in self._skip_await:
            return new
        if self.in_async:
            return self._await(original, new)
        self.flag(original, f"{what} must be awaited, but {self.why_sync()}")
        return new

    def _call_request(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self._must_await(original, updated, f"`{dotted(original.func) or 'request'}(...)`")

    def _call_call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self._must_await(original, updated, f"`{dotted(original.func)}()` (now async)")

    def _call_await(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self._funcs and last_name(original.func) == "acquire":
            what = dotted(original.func)
            self.flag(
                original, f"`{what}()` at import time cannot await: start the semaphore one lower instead"
            )
            return updated
        return self._must_await(original, updated, f"`{dotted(original.func)}()`")

    def _call_sleep(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self._funcs:
            return updated  # at import time a blocking sleep blocks nobody
        if not self.in_async:
            q = self.a.qualify(original.func)
            self.flag(original, f"`{q}` blocks the event loop, but {self.why_sync()}")
            return updated
        args = _args(updated.args) or [cst.Arg(cst.Integer("0"))]
        return self._must_await(original, updated.with_changes(func=self._asyncio("sleep"), args=args), "")

    def _spawned_call(self, original: cst.Call, updated: cst.Call) -> tuple[cst.BaseExpression, bool] | None:
        """``f(*args)`` for ``spawn(f, *args)`` and whether f is async; None without arguments."""
        if not updated.args or updated.args[0].keyword is not None or updated.args[0].star:
            return None
        target = original.args[0].value
        callee = self.a.spawn_target(target, self.func) if self.func is not None else None
        if callee is None and not self._funcs:
            callee = self.a.module_funcs.get(dotted(target) or "")
        fn = updated.args[0].value
        rest = _args(updated.args[1:])
        if callee is not None and callee.will_be_async:
            return cst.Call(func=fn, args=rest), True
        return cst.Call(func=self._asyncio("to_thread"), args=_args([cst.Arg(fn), *rest])), False

    def _call_spawn(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self._funcs:
            self.flag(
                original,
                "gevent.spawn at import time: no event loop runs yet; start it in a test_start listener",
            )
            return updated
        spawned = self._spawned_call(original, updated)
        if spawned is None:
            self.flag(original, "gevent.spawn without a function: rewrite it with asyncio.create_task")
            return updated
        call, is_async = spawned
        if not is_async:
            self.flag(
                original,
                "runs a function horde convert cannot make async in a thread: check it is thread-safe",
            )
        if isinstance(self.get_metadata(ParentNodeProvider, original, None), cst.Expr):
            # fire and forget: asyncio keeps only a weak reference to a task nobody holds
            self.flag(
                original,
                "asyncio.create_task: keep a reference and await or cancel it (a task needs an owner)",
                manual=False,
            )
        return cst.Call(func=self._asyncio("create_task"), args=[cst.Arg(call)])

    def _call_pool_spawn(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        spawned = self._spawned_call(original, updated)
        func = updated.func
        if spawned is None or not isinstance(func, cst.Attribute):
            self.flag(original, "pool.spawn without a function: rewrite it with create_task")
            return updated
        call, is_async = spawned
        if not is_async:
            self.flag(
                original,
                "runs a function horde convert cannot make async in a thread: check it is thread-safe",
            )
        return updated.with_changes(
            func=func.with_changes(attr=cst.Name("create_task")), args=[cst.Arg(call)]
        )

    def _call_join(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        assert isinstance(func, cst.Attribute)
        return self._must_await(original, func.value, f"`{dotted(original.func)}()`")

    def _call_kill(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        assert isinstance(func, cst.Attribute)
        return updated.with_changes(func=func.with_changes(attr=cst.Name("cancel")), args=[])

    def _call_joinall(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not updated.args or len(updated.args) > 1 or updated.args[0].keyword is not None:
            self.flag(original, "gevent.joinall with options: rewrite it with `await asyncio.gather(...)`")
            return updated
        value = updated.args[0].value
        if isinstance(value, (cst.List, cst.Tuple)):
            args = _args([cst.Arg(e.value) for e in value.elements])
        else:
            args = [cst.Arg(value, star="*")]
        return self._must_await(original, cst.Call(func=self._asyncio("gather"), args=args), "gevent.joinall")

    def _call_primitive(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        q = self.a.qualify(original.func) or ""
        replacement, kind = PRIMITIVES[q]
        if replacement is None:
            if kind not in ("lock", "event"):
                self.flag(original, f"`{q}`: {kind}")
            return updated
        return updated.with_changes(func=self._asyncio(replacement.split(".")[-1]))

    def _call_pool(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self._funcs:
            self.flag(
                original, "a gevent pool at import time: create the tasks in an asyncio.TaskGroup in a task"
            )
        return updated  # in a function: rewritten by leave_IndentedBlock, or flagged there

    def _call_primitive_args(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        what = dotted(original.func) or "wait"
        if what.endswith(".wait") and not original.args:
            self.flag(original, f"`{what}()`: asyncio.Semaphore has no wait(); use an asyncio.Event")
        else:
            self.flag(
                original,
                f"`{what}(...)` with a timeout or blocking flag: use `await asyncio.wait_for(...)` "
                "(it raises TimeoutError instead of returning False)",
            )
        return updated

    def _call_blocking(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if not self._funcs:
            return updated  # at import time, before the test: blocking is harmless
        what = self.a.qualify(original.func) or dotted(original.func) or "this call"
        self.flag(
            original,
            f"`{what}` blocks the event loop (every user waits): use self.client or an asyncio library, "
            f"or `await asyncio.to_thread({what}, ...)`",
        )
        return updated

    def _call_monkey(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        self.flag(
            original,
            "gevent.monkey patches the standard library for gevent; horde runs on asyncio: remove it",
        )
        return updated

    def _call_gevent(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        q = self.a.qualify(original.func)
        self.flag(original, f"`{q}` has no automatic asyncio equivalent: rewrite it (see docs/porting.md)")
        return updated

    # -- with -----------------------------------------------------------------------------------------
    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if self.a.async_with_item(item.item, self.func):
                self._skip_await.add(id(item.item))

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        if original_node.asynchronous is not None:
            return updated_node
        marks = [self.a.async_with_item(item.item, self.func) for item in original_node.items]
        if not any(marks):
            return updated_node
        if not all(marks):
            self.flag(original_node, "a with mixing requests or locks with other context managers: split it")
        elif self.in_async:
            return updated_node.with_changes(asynchronous=cst.Asynchronous())
        else:
            self.flag(original_node, f"this with must be `async with`, but {self.why_sync()}")
        return updated_node

    # -- gevent pools → asyncio.TaskGroup ----------------------------------------------------------------
    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        plans = [self.a.pool_plans[id(s)] for s in original_node.body if id(s) in self.a.pool_plans]
        if not plans or len(original_node.body) != len(updated_node.body):
            return updated_node
        body = list(updated_node.body)
        for plan in sorted(plans, key=lambda p: p.start, reverse=True):
            first = body[plan.start]
            leading = first.leading_lines if isinstance(first, _STATEMENTS) else ()
            inner = body[plan.start + 1 : plan.end] or [cst.SimpleStatementLine([cst.Pass()])]
            group = cst.With(
                items=[
                    cst.WithItem(
                        item=cst.Call(func=self._asyncio("TaskGroup")),
                        asname=cst.AsName(name=cst.Name(plan.name)),
                    )
                ],
                body=cst.IndentedBlock(body=inner),
                asynchronous=cst.Asynchronous(),
                leading_lines=leading,
            )
            body[plan.start : plan.end + 1] = [group]
        return updated_node.with_changes(body=body)

    # -- imports --------------------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        self._in_import += 1
        for alias in node.names:
            full = dotted(alias.name) or ""
            if is_locust_module(full) and alias.asname is None:
                self._locust_paths.update({full, "locust"})

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self._in_import += 1

    def leave_Import(self, original_node: cst.Import, updated_node: cst.Import) -> cst.Import:
        self._in_import -= 1
        names = []
        for alias in updated_node.names:
            full = dotted(alias.name) or ""
            root = full.split(".")[0]
            if root in _REMOVABLE_ROOTS:
                self.removable_imports.append(original_node)
            if root == "greenlet":
                self.flag(original_node, "greenlet has no asyncio equivalent: rewrite it with asyncio tasks")
            if is_locust_module(full):
                target = horde_module(full)
                if target is None:
                    self.flag(original_node, f"horde has no module like {full}: remove the import")
                else:
                    alias = alias.with_changes(name=_dotted_expr(target))
            names.append(alias)
        return updated_node.with_changes(names=names)

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.FlattenSentinel[cst.BaseSmallStatement]:
        self._in_import -= 1
        module = dotted(updated_node.module) if updated_node.module and not updated_node.relative else None
        if module is None:
            return updated_node
        root = module.split(".")[0]
        if root in _REMOVABLE_ROOTS:
            self.removable_imports.append(original_node)
        if root == "greenlet":
            self.flag(original_node, "greenlet has no asyncio equivalent: rewrite it with asyncio tasks")
        if module == "horde" or module.startswith("horde."):
            self._check_horde_names(original_node, module)
            return updated_node
        if not is_locust_module(module):
            return updated_node
        if isinstance(updated_node.names, cst.ImportStar):
            return updated_node.with_changes(module=_dotted_expr(horde_module(module) or "horde"))
        groups: dict[str, list[cst.ImportAlias]] = {}
        for alias in updated_node.names:
            name = dotted(alias.name) or ""
            target = horde_name(module, name)
            if not target.found:
                self.flag(original_node, _missing(target.module, name))
            if target.name != name:
                alias = alias.with_changes(
                    name=cst.Name(target.name), asname=alias.asname or cst.AsName(name=cst.Name(name))
                )
            groups.setdefault(target.module, []).append(alias)
        if len(groups) == 1:
            (target_module, aliases), *_ = groups.items()
            return updated_node.with_changes(module=_dotted_expr(target_module), names=aliases)
        statements = [
            cst.ImportFrom(
                module=_dotted_expr(target_module),
                names=[
                    a.with_changes(comma=_comma() if i < len(aliases) - 1 else cst.MaybeSentinel.DEFAULT)
                    for i, a in enumerate(aliases)
                ],
            )
            for target_module, aliases in groups.items()
        ]
        return cst.FlattenSentinel(statements)

    def _check_horde_names(self, node: cst.ImportFrom, module: str) -> None:
        """A converted file imports from horde: a name horde still lacks stays flagged on every run."""
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = dotted(alias.name) or ""
            if not has_name(module, name):
                self.flag(node, _missing(module, name))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.SimpleStatementLine]:
        # an import split over several horde modules becomes one line per module
        if len(updated_node.body) <= 1 or not all(isinstance(s, cst.ImportFrom) for s in updated_node.body):
            return updated_node
        if len(original_node.body) != 1:
            return updated_node
        lines = [
            cst.SimpleStatementLine(body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)])
            for s in updated_node.body
        ]
        lines[0] = lines[0].with_changes(leading_lines=updated_node.leading_lines)
        return cst.FlattenSentinel(lines)

    def leave_Attribute(self, original_node: cst.Attribute, updated_node: cst.Attribute) -> cst.Attribute:
        if original_node.attr.value == "greenlet" and last_name(original_node.value) == "runner":
            self.flag(
                original_node,
                "horde's runners have no greenlet: `await runner.wait_stopped()` waits for the end",
            )
        if self._in_import or not self._locust_paths:
            return updated_node
        base = dotted(original_node.value)
        full = dotted(original_node)
        if base is None or base not in self._locust_paths or full is None:
            return updated_node
        if any(p == full or p.startswith(full + ".") for p in self._locust_paths):
            return updated_node  # a module path itself: the outer attribute is rewritten
        target = horde_module(base)
        name = original_node.attr.value
        if target is None:
            self.flag(original_node, f"horde has no module like {base}: remove it or port what it does")
            return updated_node
        if not has_name(target, name):
            self.flag(original_node, _missing(target, name))
        return updated_node.with_changes(value=_dotted_expr(target))
