"""The first pass of ``horde convert``: what the locustfile defines and which functions must become async.

Nothing is rewritten here. The pass records imports (local name → qualified name), classes and their kind
(user, task set, other), every function with its role (task, hook, spawned) and what in its own body needs
an ``await`` (a request, a sleep, a lock), the calls it makes to other functions of the file, and which
``gevent`` pools can become task groups. Then :meth:`Analysis.solve` propagates "async" along those calls
to a fixed point: a helper that calls an async function becomes async itself, and so on upwards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import libcst as cst

# Request methods of both clients (Locust's HttpSession and FastHttpSession).
VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})
USER_BASES = {
    "HttpUser": "http",
    "FastHttpUser": "http",
    "User": "user",
    "TaskSet": "taskset",
    "SequentialTaskSet": "taskset",
    "MarkovTaskSet": "taskset",
}
# Methods horde's User/TaskSet define as coroutines: ``self.wait()``, ``super().on_start()``.
FRAMEWORK_ASYNC = frozenset({"on_start", "on_stop", "wait"})
HOOKS = frozenset({"on_start", "on_stop"})
TASK_DECORATORS = frozenset({"task", "transition", "transitions"})  # the last two: MarkovTaskSet
SESSIONS = frozenset({"HttpSession", "FastHttpSession"})
SLEEPS = frozenset({"time.sleep", "gevent.sleep"})
SPAWNS = frozenset({"gevent.spawn", "gevent.Greenlet.spawn"})
JOINALLS = frozenset({"gevent.joinall", "gevent.wait"})
POOLS = frozenset({"gevent.pool.Pool", "gevent.pool.Group", "gevent.Pool"})
# gevent primitive → (asyncio replacement or None when there is no safe one, kind or the problem).
PRIMITIVES: dict[str, tuple[str | None, str]] = {
    "gevent.lock.Semaphore": ("asyncio.Semaphore", "lock"),
    "gevent.lock.BoundedSemaphore": ("asyncio.BoundedSemaphore", "lock"),
    "gevent.coros.Semaphore": ("asyncio.Semaphore", "lock"),
    "gevent.coros.BoundedSemaphore": ("asyncio.BoundedSemaphore", "lock"),
    "gevent.event.Event": ("asyncio.Event", "event"),
    "asyncio.Semaphore": (None, "lock"),
    "asyncio.BoundedSemaphore": (None, "lock"),
    "asyncio.Lock": (None, "lock"),
    "asyncio.Event": (None, "event"),
    "gevent.lock.RLock": (
        None,
        "asyncio has no re-entrant lock: use asyncio.Lock() (with `async with`) if it is never re-entered",
    ),
    "gevent.lock.DummySemaphore": (None, "no asyncio equivalent: remove it or use asyncio.Semaphore()"),
    "gevent.event.AsyncResult": (None, "use an asyncio.Future (`await fut`, `fut.set_result(x)`)"),
    "gevent.queue.Queue": (None, "use asyncio.Queue (`await q.get()`, `await q.put(x)`)"),
    "gevent.queue.JoinableQueue": (None, "use asyncio.Queue (`await q.get()`, `await q.join()`)"),
}
# Calls that wrap a coroutine rather than await it: a request passed to them is left alone.
TASK_WRAPPERS = frozenset(
    {"create_task", "ensure_future", "gather", "wait_for", "shield", "run", "run_coroutine_threadsafe"}
)
# Blocking clients: a call whose qualified name starts with one of these blocks the event loop.
BLOCKING_PREFIXES = (
    "requests.",
    "urllib.request.",
    "urllib3.",
    "http.client.",
    "httpx.",
    "pycurl.",
    "socket.create_connection",
    "pymongo.MongoClient",
    "psycopg2.connect",
    "pymysql.connect",
    "mysql.connector.connect",
    "redis.Redis",
    "redis.StrictRedis",
    "websocket.create_connection",
    "paramiko.",
    "smtplib.",
    "ftplib.",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
)
NOT_BLOCKING_PREFIXES = ("httpx.Async", "requests.exceptions.", "httpx.Timeout", "httpx.Limits")


def dotted(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted(node.value)
        return None if base is None else f"{base}.{node.attr.value}"
    return None


def last_name(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


# Constructors of blocking clients: building one does no I/O, calling its methods does (and is flagged).
BLOCKING_CONSTRUCTORS = frozenset(
    {
        "Session",
        "Client",
        "Redis",
        "StrictRedis",
        "MongoClient",
        "HTTPConnection",
        "HTTPSConnection",
        "PoolManager",
    }
)


def is_blocking(qualified: str) -> bool:
    return qualified.startswith(BLOCKING_PREFIXES) and not qualified.startswith(NOT_BLOCKING_PREFIXES)


def is_blocking_call(qualified: str) -> bool:
    return is_blocking(qualified) and qualified.split(".")[-1] not in BLOCKING_CONSTRUCTORS


@dataclass(eq=False)
class Cls:
    node: cst.ClassDef
    name: str
    bases: list[str]  # qualified names of the bases (or local names of classes of this file)
    methods: dict[str, Func] = field(default_factory=dict)
    task_refs: list[str] = field(default_factory=list)  # names listed in ``tasks = [...]``/``{...}``
    assigns_client: bool = False  # sets ``self.client = ...`` itself (a custom client)
    kind: str = "other"  # http, user, taskset, other


@dataclass(eq=False)
class Func:
    node: cst.FunctionDef
    name: str
    cls: Cls | None  # the class it is a method of
    owner: Cls | None  # the class whose ``self`` it sees (for nested functions too)
    parent: Func | None
    first_param: str | None
    is_async: bool
    role: str | None = None  # task, hook, spawned
    blocker: str | None = None  # why it cannot become async
    direct: bool = False  # its own body needs an await
    calls: list[tuple[str, str]] = field(default_factory=list)  # (self|name|user|super, name)
    nested: dict[str, Func] = field(default_factory=dict)
    client_aliases: set[str] = field(default_factory=set)
    spawned: set[str] = field(default_factory=set)  # local names bound to gevent.spawn(...)
    pools: set[str] = field(default_factory=set)  # pool names that become task groups here
    will_be_async: bool = False


@dataclass(frozen=True)
class PoolPlan:
    name: str
    start: int  # index of ``name = Pool()`` in its block
    end: int  # index of ``name.join()``


class Analysis(cst.CSTVisitor):
    """Run :meth:`analyze`, then :meth:`solve`; the transformer reads the result."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}  # local name → qualified name ("sleep" → "time.sleep")
        self.classes: dict[str, Cls] = {}
        self.funcs: list[Func] = []
        self.by_node: dict[int, Func] = {}
        self.module_funcs: dict[str, Func] = {}
        # last names of the targets bound to HttpSession(...)/FastHttpSession(...)
        self.sessions: set[str] = set()
        self.instances: dict[str, str] = {}  # last name of a target → the class called to build it
        self.client_classes: set[str] = set()  # classes whose methods set ``self.client = ...``
        self.primitives: dict[str, str] = {}  # last name of a target → "lock" | "event" | problem
        self.blocking_objects: dict[str, str] = {}  # last name of a target → what built it
        self.pool_plans: dict[int, PoolPlan] = {}  # id(first statement) → plan
        self.bad_pools: dict[int, str] = {}  # id(pool statement) → why it stays
        self._spawn_targets: list[tuple[cst.BaseExpression, Func]] = []
        self._class_stack: list[Cls] = []
        self._func_stack: list[Func | None] = []  # None for a lambda

    def analyze(self, module: cst.Module) -> None:
        # bindings first, so that a use above its definition (a lock set in on_start, defined after the
        # tasks that take it) is still recognised
        module.visit(_Bindings(self))
        module.visit(self)

    def qualify(self, node: cst.BaseExpression) -> str | None:
        """The qualified name an expression refers to through the file's imports (``sleep`` →
        ``time.sleep``), or None when it is not rooted in an import."""
        d = dotted(node)
        if d is None:
            return None
        root, _, rest = d.partition(".")
        target = self.aliases.get(root)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    # -- classes --------------------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        bases = []
        for arg in node.bases:
            q = self.qualify(arg.value) or dotted(arg.value)
            if q is not None:
                bases.append(q)
        cls = Cls(node, node.name.value, bases, assigns_client=node.name.value in self.client_classes)
        self.classes.setdefault(cls.name, cls)
        self._class_stack.append(cls)
        for stmt in node.body.body:
            if isinstance(stmt, cst.SimpleStatementLine):
                for small in stmt.body:
                    if isinstance(small, cst.Assign) and any(
                        isinstance(t.target, cst.Name) and t.target.value == "tasks" for t in small.targets
                    ):
                        cls.task_refs.extend(_task_names(small.value))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._class_stack.pop()

    # -- functions ------------------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        parent = self._func_stack[-1] if self._func_stack else None
        in_class = self._class_stack[-1] if self._class_stack else None
        # a def directly in a class body is a method; one inside a function is a local function
        cls = (
            in_class
            if in_class is not None and (not self._func_stack or _directly_in(node, in_class))
            else None
        )
        owner = cls or (parent.owner if parent else None)
        params = node.params.params
        first = params[0].name.value if params else None
        func = Func(node, node.name.value, cls, owner, parent, first, node.asynchronous is not None)
        func.blocker = self._blocker(node, cls)
        if cls is not None:
            cls.methods.setdefault(func.name, func)
        elif parent is not None:
            parent.nested.setdefault(func.name, func)
        else:
            self.module_funcs.setdefault(func.name, func)
        for deco in node.decorators:
            target = deco.decorator.func if isinstance(deco.decorator, cst.Call) else deco.decorator
            q = self.qualify(target) or dotted(target) or ""
            if q.split(".")[-1] in TASK_DECORATORS:
                func.role = "task"
        self.funcs.append(func)
        self.by_node[id(node)] = func
        self._func_stack.append(func)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._func_stack.pop()

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._func_stack.append(None)

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._func_stack.pop()

    def _blocker(self, node: cst.FunctionDef, cls: Cls | None) -> str | None:
        name = node.name.value
        if name.startswith("__") and name.endswith("__"):
            return f"{name} cannot be async"
        if cls is not None and name == "wait_time":
            return "wait_time is called synchronously"
        for deco in node.decorators:
            if (dotted(deco.decorator) or "").split(".")[-1] in ("property", "cached_property", "setter"):
                return f"the property {name} cannot be async"
        if _contains_yield(node.body):
            return f"{name} is a generator"
        return None

    @property
    def current(self) -> Func | None:
        return self._func_stack[-1] if self._func_stack else None

    # -- bodies ---------------------------------------------------------------------------------------
    def visit_Assign(self, node: cst.Assign) -> None:
        func = self.current
        if func is None:
            return
        if isinstance(node.value, cst.Attribute) and node.value.attr.value == "client":
            func.client_aliases.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))
        elif isinstance(node.value, cst.Call) and (self.qualify(node.value.func) or "") in SPAWNS:
            func.spawned.update(t.target.value for t in node.targets if isinstance(t.target, cst.Name))

    def visit_Call(self, node: cst.Call) -> None:
        func = self.current
        if func is None:
            return
        kind = self.classify(node, func)
        if kind in ("request", "sleep", "await", "joinall", "join"):
            func.direct = True
        if kind in ("spawn", "pool_spawn") and node.args:
            self._spawn_targets.append((node.args[0].value, func))
        ref = self.call_ref(node, func)
        if ref is not None:
            func.calls.append(ref)

    def visit_With(self, node: cst.With) -> None:
        func = self.current
        if func is not None and any(self.async_with_item(item.item, func) for item in node.items):
            func.direct = True

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        func = self.current
        if func is not None:
            self._plan_pools(node.body, func)

    def spawn_target(self, target: cst.BaseExpression, func: Func) -> Func | None:
        """The function of this file that ``gevent.spawn(target, ...)`` runs, if it is one."""
        found = self.targets(self.call_ref(cst.Call(func=target), func), func)
        return found[0] if len(found) == 1 else None

    # -- what a call is -------------------------------------------------------------------------------
    def is_request(self, call: cst.Call, func: Func | None) -> bool:
        callee = call.func
        if not isinstance(callee, cst.Attribute):
            return False
        verb, recv = callee.attr.value, callee.value
        if verb in VERBS:
            if isinstance(recv, cst.Attribute) and recv.attr.value == "client":
                return not self.custom_client(recv.value, func)
            if last_name(recv) in self.sessions:
                return True
            return isinstance(recv, cst.Name) and func is not None and recv.value in func.client_aliases
        if verb == "rest":
            if isinstance(recv, cst.Attribute):
                return recv.attr.value in ("client", "user")
            if isinstance(recv, cst.Name) and func is not None:
                if recv.value == "self":
                    return func.owner is None or "rest" not in func.owner.methods
                return recv.value == func.first_param and func.cls is None
        return False

    def custom_client(self, receiver: cst.BaseExpression, func: Func | None) -> bool:
        """``self.client`` of a plain ``User`` that builds its own client: not horde's HTTP client."""
        if func is None or func.owner is None or not isinstance(receiver, cst.Name):
            return False
        return receiver.value == "self" and self.class_kind(func.owner) == "user"

    def classify(self, call: cst.Call, func: Func | None) -> str | None:
        """request | sleep | spawn | pool_spawn | join | kill | joinall | await | primitive | blocking |
        monkey | gevent | None (see the transformer for what each becomes)."""
        if self.is_request(call, func):
            return "request"
        q = self.qualify(call.func) or ""
        if q in SLEEPS:
            return "sleep"
        if q in SPAWNS:
            return "spawn"
        if q in JOINALLS:
            return "joinall"
        if q in PRIMITIVES:
            return "primitive"
        if q in POOLS:
            return "pool"
        if q.startswith("gevent.monkey") or q == "gevent.monkey":
            return "monkey"
        if q.startswith("gevent") or q.startswith("greenlet"):
            return "gevent"
        if is_blocking_call(q):
            return "blocking"
        callee = call.func
        if isinstance(callee, cst.Attribute):
            recv_name = last_name(callee.value)
            m = callee.attr.value
            if func is not None and isinstance(callee.value, cst.Name):
                if callee.value.value in func.pools and m == "spawn":
                    return "pool_spawn"
                if callee.value.value in func.spawned:
                    if m in ("join", "get"):
                        return "join"
                    if m == "kill":
                        return "kill"
            if recv_name in self.primitives:
                kind = self.primitives[recv_name]
                if kind == "lock" and m == "acquire":
                    return "await" if not call.args else "primitive_args"
                if kind == "event" and m == "wait":
                    return "await" if not call.args else "primitive_args"
                if kind == "lock" and m == "wait":
                    return "primitive_args"
            if recv_name in self.blocking_objects and m not in ("close", "mount"):
                return "blocking"
        return None

    def async_with_item(self, item: cst.BaseExpression, func: Func | None) -> bool:
        if isinstance(item, cst.Call):
            return self.is_request(item, func)
        name = last_name(item)
        return name is not None and self.primitives.get(name) == "lock"

    # -- gevent pools ---------------------------------------------------------------------------------
    def _plan_pools(self, body: Sequence[cst.BaseStatement], func: Func) -> None:
        for i, stmt in enumerate(body):
            assign = _single_assign(stmt)
            if assign is None or not isinstance(assign.value, cst.Call):
                continue
            if (self.qualify(assign.value.func) or "") not in POOLS:
                continue
            name = assign.targets[0].target
            if not isinstance(name, cst.Name) or len(assign.targets) != 1:
                self.bad_pools[id(stmt)] = "a gevent pool kept in an attribute"
                continue
            why = self._pool_problem(body, i, name.value, assign.value, func)
            if isinstance(why, str):
                self.bad_pools[id(stmt)] = why
            else:
                self.pool_plans[id(stmt)] = PoolPlan(name.value, i, why)
                func.pools.add(name.value)
                func.direct = True

    def _pool_problem(
        self, body: Sequence[cst.BaseStatement], start: int, name: str, ctor: cst.Call, func: Func
    ) -> str | int:
        if ctor.args:
            return "a gevent pool with a size: asyncio.TaskGroup has no limit (use an asyncio.Semaphore)"
        if func.blocker is not None:
            return f"a gevent pool in a function that cannot be async ({func.blocker})"
        end = None
        for j in range(start + 1, len(body)):
            expr = _single_expr(body[j])
            if (
                isinstance(expr, cst.Call)
                and isinstance(expr.func, cst.Attribute)
                and dotted(expr.func.value) == name
                and expr.func.attr.value == "join"
            ):
                if expr.args:
                    return f"{name}.join() with arguments has no asyncio.TaskGroup equivalent"
                end = j
                break
        if end is None:
            return f"no {name}.join() in the same block: create the tasks in an asyncio.TaskGroup"
        uses = _NameUses(name)
        for stmt in body[start + 1 : end]:
            stmt.visit(uses)
        later = _NameUses(name)
        for stmt in body[end + 1 :]:
            stmt.visit(later)
        if uses.other or later.total:
            return f"{name} is used for more than spawn() and join(): rewrite it with asyncio.TaskGroup"
        return end

    # -- solving --------------------------------------------------------------------------------------
    def class_kind(self, cls: Cls, seen: frozenset[str] = frozenset()) -> str:
        kinds = set()
        for base in cls.bases:
            short = base.split(".")[-1]
            root = base.split(".")[0]
            if base in self.classes and base not in seen and self.classes[base] is not cls:
                kinds.add(self.class_kind(self.classes[base], seen | {cls.name}))
            elif root in ("locust", "horde") and short in USER_BASES:
                kinds.add(USER_BASES[short])
        for kind in ("http", "taskset", "user"):
            if kind in kinds:
                # a plain User that builds its own client: calls on self.client are not horde's
                if kind == "user" and not self._assigns_client(cls, seen):
                    return "http"  # no custom client in sight: assume a subclass is an HTTP user
                return kind
        return "other"

    def _assigns_client(self, cls: Cls, seen: frozenset[str]) -> bool:
        if cls.assigns_client:
            return True
        return any(
            b in self.classes and b not in seen and self._assigns_client(self.classes[b], seen | {cls.name})
            for b in cls.bases
        )

    def mro(self, cls: Cls) -> Iterator[Cls]:
        seen: set[str] = set()
        stack = [cls]
        while stack:
            c = stack.pop(0)
            if c.name in seen:
                continue
            seen.add(c.name)
            yield c
            stack.extend(self.classes[b] for b in c.bases if b in self.classes)

    def call_ref(self, call: cst.Call, func: Func) -> tuple[str, str] | None:
        """How a call names its target: (self|super|user|name|of:Class, name)."""
        callee = call.func
        if isinstance(callee, cst.Name):
            return ("name", callee.value)
        if not isinstance(callee, cst.Attribute):
            return None
        recv, m = callee.value, callee.attr.value
        if isinstance(recv, cst.Name) and recv.value == "self":
            return ("self", m)
        if isinstance(recv, cst.Call) and dotted(recv.func) == "super":
            return ("super", m)
        if (isinstance(recv, cst.Attribute) and recv.attr.value in ("user", "parent")) or (
            isinstance(recv, cst.Name) and recv.value == func.first_param and func.cls is None
        ):
            return ("user", m)
        bound = self.instances.get(last_name(recv) or "")
        if bound is not None and bound in self.classes:
            return (f"of:{bound}", m)  # self.api = Api(self.client); self.api.items()
        return None

    def targets(self, ref: tuple[str, str] | None, func: Func) -> list[Func]:
        """The functions of this file a call may reach."""
        if ref is None:
            return []
        kind, name = ref
        if kind == "name":
            scope: Func | None = func
            while scope is not None:
                if name in scope.nested:
                    return [scope.nested[name]]
                scope = scope.parent
            return [self.module_funcs[name]] if name in self.module_funcs else []
        if kind in ("self", "super") and func.owner is not None:
            classes = list(self.mro(func.owner))
            if kind == "super":
                classes = classes[1:]
            for c in classes:
                if name in c.methods:
                    return [c.methods[name]]
            return []
        if kind == "user":
            return [c.methods[name] for c in self.classes.values() if name in c.methods]
        if kind.startswith("of:"):
            for c in self.mro(self.classes[kind[3:]]):
                if name in c.methods:
                    return [c.methods[name]]
        return []

    def framework_async(self, ref: tuple[str, str], func: Func) -> bool:
        """``super().on_start()``, ``self.wait()``: methods horde's User/TaskSet define as coroutines."""
        kind, name = ref
        if name not in FRAMEWORK_ASYNC or kind not in ("self", "super", "user") or self.targets(ref, func):
            return False
        owner = func.owner
        return owner is not None and self.class_kind(owner) != "other"

    def solve(self) -> None:
        for target, spawner in self._spawn_targets:
            callee = self.spawn_target(target, spawner)
            if callee is not None and callee.role is None:
                callee.role = "spawned"
        for cls in self.classes.values():
            cls.kind = self.class_kind(cls)
            userish = (
                cls.kind != "other" or cls.task_refs or any(m.role == "task" for m in cls.methods.values())
            )
            for name in cls.task_refs:
                listed = cls.methods.get(name) or self.module_funcs.get(name)
                if listed is not None and listed.role is None:
                    listed.role = "task"
            if userish:
                for hook in HOOKS:
                    if hook in cls.methods and cls.methods[hook].role is None:
                        cls.methods[hook].role = "hook"
        for f in self.funcs:
            f.will_be_async = f.is_async or (f.blocker is None and (f.role is not None or f.direct))
        changed = True
        while changed:
            changed = False
            for f in self.funcs:
                if f.will_be_async or f.blocker is not None:
                    continue
                if any(self.call_is_async(ref, f) for ref in f.calls):
                    f.will_be_async = True
                    changed = True

    def call_is_async(self, ref: tuple[str, str], func: Func) -> bool:
        return any(t.will_be_async for t in self.targets(ref, func)) or self.framework_async(ref, func)


def _task_names(value: cst.BaseExpression) -> list[str]:
    if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
        return [n for e in value.elements if (n := dotted(e.value)) is not None]
    if isinstance(value, cst.Dict):
        return [
            n for e in value.elements if isinstance(e, cst.DictElement) and (n := dotted(e.key)) is not None
        ]
    return []


def _directly_in(node: cst.FunctionDef, cls: Cls) -> bool:
    return any(stmt is node for stmt in cls.node.body.body)


class _YieldFinder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found = False

    def visit_Yield(self, node: cst.Yield) -> None:
        self.found = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested generator does not make its parent one

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _contains_yield(body: cst.BaseSuite) -> bool:
    finder = _YieldFinder()
    body.visit(finder)
    return finder.found


class _NameUses(cst.CSTVisitor):
    """Counts the uses of a name, and those that are not ``name.spawn(...)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0
        self.other = 0
        self._spawn_receivers: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        f = node.func
        if isinstance(f, cst.Attribute) and f.attr.value == "spawn" and isinstance(f.value, cst.Name):
            self._spawn_receivers.add(id(f.value))

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False  # the attribute's own name is not a use

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == self.name:
            self.total += 1
            if id(node) not in self._spawn_receivers:
                self.other += 1


def _single_assign(stmt: cst.BaseStatement) -> cst.Assign | None:
    if (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Assign)
    ):
        return stmt.body[0]
    return None


def _single_expr(stmt: cst.BaseStatement) -> cst.BaseExpression | None:
    if (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
    ):
        return stmt.body[0].value
    return None


class _Bindings(cst.CSTVisitor):
    """The prepass: imports, and what names are bound to (locks, sessions, blocking clients)."""

    def __init__(self, analysis: Analysis) -> None:
        self.a = analysis
        self._classes: list[str] = []

    # -- imports --------------------------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.a.aliases[alias.asname.name.value] = full
            else:
                root = full.split(".")[0]
                self.a.aliases.setdefault(root, root)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if node.relative or node.module is None or isinstance(node.names, cst.ImportStar):
            return
        module = dotted(node.module)
        if module is None:
            return
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.a.aliases[local] = f"{module}.{name}"

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        if not isinstance(node.value, cst.Call):
            return
        a = self.a
        q = a.qualify(node.value.func) or ""
        for t in node.targets:
            name = last_name(t.target)
            if name is None:
                continue
            if isinstance(node.value.func, cst.Name):
                a.instances.setdefault(name, node.value.func.value)  # a class of this file, maybe
            if q.split(".")[-1] in SESSIONS and q.split(".")[0] in ("locust", "horde"):
                a.sessions.add(name)  # self.api = HttpSession(...): a second client
            elif q in PRIMITIVES:
                a.primitives[name] = PRIMITIVES[q][1]
            elif is_blocking(q):
                a.blocking_objects[name] = q
            target = t.target
            if (
                name == "client"
                and isinstance(target, cst.Attribute)
                and dotted(target.value) == "self"
                and self._classes
            ):
                a.client_classes.add(self._classes[-1])
