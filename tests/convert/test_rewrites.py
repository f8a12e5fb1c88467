"""Single rewrites on small snippets: the edges the corpus does not show."""

from __future__ import annotations

import textwrap

import pytest

from horde.convert import ConvertError, convert_source


def conv(src: str) -> str:
    return convert_source(textwrap.dedent(src)).code


def manual(src: str) -> list[str]:
    return [f.message for f in convert_source(textwrap.dedent(src)).findings if f.manual]


HEAD = "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"


def method(body: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(body), "    ")


def test_await_is_parenthesized_where_the_response_is_used_directly() -> None:
    out = conv(
        method(
            "@task\ndef t(self):\n    n = self.client.get('/a').json()['n']\n    s = (self.client.get('/b')).text\n"
        )
    )
    assert "n = (await self.client.get('/a')).json()['n']" in out
    assert "s = (await self.client.get('/b')).text" in out


def test_super_on_start_and_self_wait_are_awaited() -> None:
    out = conv(
        method("def on_start(self):\n    super().on_start()\n\n@task\ndef t(self):\n    self.wait()\n")
    )
    assert "await super().on_start()" in out
    assert "await self.wait()" in out


def test_a_partial_port_gets_the_missing_awaits_and_leaves_task_arguments_alone() -> None:
    out = conv(
        method(
            """
            async def login(self):
                await self.client.post("/login")

            @task
            async def t(self):
                self.login()
                await self.login()
                asyncio.create_task(self.login())
            """
        )
    )
    assert out.count("await self.login()") == 2
    assert "asyncio.create_task(self.login())" in out


def test_helpers_that_do_not_touch_the_client_stay_synchronous() -> None:
    out = conv(
        method(
            "def payload(self):\n    return {'a': 1}\n\n@task\ndef t(self):\n    self.client.post('/x', json=self.payload())\n"
        )
    )
    assert "def payload(self):" in out and "async def payload" not in out
    assert "await self.client.post('/x', json=self.payload())" in out


def test_a_call_chain_becomes_async_to_a_fixed_point() -> None:
    out = conv(
        method(
            """
            @task
            def t(self):
                self.a()

            def a(self):
                self.b()

            def b(self):
                self.c()

            def c(self):
                self.client.get("/deep")
            """
        )
    )
    for name in "abc":
        assert f"async def {name}(self):" in out
    assert "await self.a()" in out and "await self.b()" in out and "await self.c()" in out


def test_what_cannot_be_async_is_flagged_not_rewritten() -> None:
    src = method(
        """
        def __init__(self, env):
            super().__init__(env)
            self.client.get("/init")

        @task
        def gen(self):
            yield self.client.get("/g")

        @task
        def lam(self):
            cb = lambda: self.client.get("/l")
        """
    )
    out, msgs = conv(src), manual(src)
    assert "def __init__(self, env):" in out and 'self.client.get("/init")' in out
    assert any("__init__ cannot be async" in m for m in msgs)
    assert any("task gen must be async def, but gen is a generator" in m for m in msgs)
    assert any("a lambda cannot await" in m for m in msgs)


def test_a_with_mixing_a_request_and_a_file_is_flagged() -> None:
    msgs = manual(
        method("@task\ndef t(self):\n    with self.client.get('/a') as r, open('f') as fh:\n        pass\n")
    )
    assert msgs == ["a with mixing requests or locks with other context managers: split it"]


def test_a_sized_pool_and_a_pool_without_join_are_flagged() -> None:
    src = """
    from gevent.pool import Pool
    from locust import HttpUser, task

    class U(HttpUser):
        @task
        def sized(self):
            pool = Pool(5)
            pool.spawn(self.client.get, "/a")
            pool.join()

        @task
        def unjoined(self):
            pool = Pool()
            pool.spawn(self.client.get, "/a")
    """
    msgs = manual(src)
    assert any("a gevent pool with a size" in m for m in msgs)
    assert any("no pool.join() in the same block" in m for m in msgs)
    assert "Pool(5)" in conv(src)


def test_module_attribute_paths_follow_their_imports() -> None:
    out = conv(
        """
        import locust
        import locust.exception
        import locust.stats

        class U(locust.HttpUser):
            @locust.task
            def t(self):
                raise locust.exception.StopUser()
        """
    )
    assert "import horde\nimport horde.exceptions\nimport horde.stats\n" in out
    assert "class U(horde.HttpUser):" in out and "@horde.task" in out
    assert "raise horde.exceptions.StopUser()" in out
    assert "async def t(self):" in out


def test_a_from_import_split_over_horde_modules_gets_one_line_per_module() -> None:
    out = conv("from locust.contrib.fasthttp import FastHttpUser, FastHttpSession\n")
    assert "from horde import FastHttpUser\n" in out
    assert "FastHttpSession" in out and "from locust" not in out


def test_locust_error_is_imported_under_its_locust_name() -> None:
    assert conv("from locust.exception import LocustError\n") == (
        "from horde.exceptions import HordeError as LocustError\n"
    )


def test_asyncio_is_imported_once_after_the_docstring_and_future_imports() -> None:
    src = (
        '"""Doc."""\nfrom __future__ import annotations\n\nimport time\nfrom locust import User, task\n\n\n'
        "class U(User):\n    @task\n    def t(self):\n        time.sleep(1)\n"
    )
    out = convert_source(src).code
    assert out.startswith('"""Doc."""\nfrom __future__ import annotations\n\nimport asyncio\nfrom horde')
    assert out.count("import asyncio") == 1
    assert "import time" not in out


def test_gevent_queue_and_async_result_are_flagged() -> None:
    msgs = manual(
        """
        import gevent.queue
        from gevent.event import AsyncResult

        q = gevent.queue.Queue()
        r = AsyncResult()
        """
    )
    assert any("asyncio.Queue" in m for m in msgs) and any("asyncio.Future" in m for m in msgs)


def test_event_wait_with_a_timeout_is_flagged() -> None:
    src = """
    from gevent.event import Event
    from locust import User, task

    ready = Event()

    class U(User):
        @task
        def t(self):
            ready.wait(5)
    """
    assert any("asyncio.wait_for" in m for m in manual(src))


def test_fire_and_forget_spawn_gets_an_ownership_note() -> None:
    src = """
    import gevent
    from locust import events

    def loop(environment):
        gevent.sleep(1)

    @events.init.add_listener
    def on_init(environment, **kw):
        gevent.spawn(loop, environment)
    """
    result = convert_source(textwrap.dedent(src))
    assert "asyncio.create_task(loop(environment))" in result.code
    assert "async def loop(environment):" in result.code
    assert [f.manual for f in result.findings] == [False]
    assert "# horde convert: asyncio.create_task: keep a reference" in result.code


def test_spawn_of_an_unknown_function_runs_it_in_a_thread_and_is_flagged() -> None:
    src = """
    import gevent
    import somewhere

    def f():
        gevent.spawn(somewhere.work, 1)
    """
    out = conv(src)
    assert "asyncio.create_task(asyncio.to_thread(somewhere.work, 1))" in out
    assert any("in a thread" in m for m in manual(src))


def test_nothing_to_change_gives_the_same_text_and_no_findings() -> None:
    src = "from horde import HttpUser, task\n\n\nclass U(HttpUser):\n    @task\n    async def t(self):\n        await self.client.get('/')\n"
    result = convert_source(src)
    assert result.code == src and not result.changed and result.findings == []


def test_a_syntax_error_says_where() -> None:
    with pytest.raises(ConvertError) as info:
        convert_source("def f(:\n    pass\n")
    assert info.value.line == 1


def test_the_wait_for_all_users_recipe_is_flagged_where_asyncio_differs() -> None:
    src = """
    from gevent.lock import Semaphore
    from locust import HttpUser, task

    spawned = Semaphore()
    spawned.acquire()

    class U(HttpUser):
        def on_start(self):
            spawned.wait()
    """
    msgs = manual(src)
    assert "asyncio.Semaphore()" in conv(src)
    assert any("at import time cannot await" in m for m in msgs)
    assert any("asyncio.Semaphore has no wait()" in m for m in msgs)


def test_a_second_http_session_is_awaited_like_the_client() -> None:
    out = conv(
        """
        from locust import HttpUser, task
        from locust.clients import HttpSession

        class Multi(HttpUser):
            def on_start(self):
                self.api = HttpSession("http://api", request_event=self.environment.events.request, user=self)

            @task
            def t(self):
                self.api.get("/stats")
        """
    )
    assert 'await self.api.get("/stats")' in out
    assert "async def t(self):" in out


def test_runner_greenlet_is_flagged() -> None:
    msgs = manual("def main(runner):\n    runner.greenlet.join()\n")
    assert any("runner.wait_stopped()" in m for m in msgs)


def test_a_blocking_session_is_flagged_where_it_is_used_not_where_it_is_built() -> None:
    src = """
    import requests
    from locust import HttpUser, task

    class U(HttpUser):
        def on_start(self):
            self.session = requests.Session()

        @task
        def t(self):
            self.session.get("http://other/")
            self.client.get("/")
    """
    msgs = manual(src)
    assert len(msgs) == 1 and msgs[0].startswith("`self.session.get` blocks the event loop")
    assert "await asyncio.to_thread(self.session.get, ...)" in msgs[0]


def test_a_custom_client_gets_one_note_on_the_class_that_builds_it() -> None:
    src = """
    from locust import User, task

    class Base(User):
        abstract = True
        def __init__(self, environment):
            super().__init__(environment)
            self.client = make_client()

    class Concrete(Base):
        @task
        def t(self):
            self.client.get("x")
    """
    result = convert_source(textwrap.dedent(src))
    assert [(f.manual, f.message.split()[0]) for f in result.findings] == [(False, "Base")]
    assert '        self.client.get("x")\n' in result.code and "await self.client" not in result.code


def test_a_lock_bound_after_the_task_that_takes_it_is_still_recognised() -> None:
    out = conv(
        """
        from gevent.lock import Semaphore
        from locust import HttpUser, task

        class U(HttpUser):
            @task
            def t(self):
                with self.lock:
                    self.client.get("/")

            def on_start(self):
                self.lock = Semaphore()
        """
    )
    assert "async with self.lock:" in out and "self.lock = asyncio.Semaphore()" in out


@pytest.mark.parametrize(
    "src",
    [
        "",
        "# only a comment\n",
        "from locust import HttpUser, task\r\n\r\nclass U(HttpUser):\r\n    @task\r\n    def t(self):\r\n        self.client.get('/')\r\n",
        "from locust import HttpUser, task\nimport time\nclass U(HttpUser):\n\t@task\n\tdef t(self):\n\t\ttime.sleep(1)\n",
        "from locust import (\n    HttpUser,\n    task,\n    not_in_horde,\n)\n",
        "import requests\nfrom locust import User, task\nclass U(User):\n    @task\n    def t(self):\n        if 1:\n            pass\n        elif requests.get('x'):\n            pass\n",
        "from __future__ import annotations\nimport time\ndef f():\n    time.sleep(1)\n",
    ],
    ids=["empty", "comment", "crlf", "tabs", "flag-on-first-line", "elif", "future"],
)
def test_odd_inputs_convert_compile_and_stay_put(src: str) -> None:
    once = convert_source(src).code
    compile(once, "x.py", "exec")
    assert convert_source(once).code == once
    if "\r\n" in src:
        assert "\r\n" in once and "\n" not in once.replace("\r\n", "")


def test_markov_transitions_are_tasks() -> None:
    out = conv(
        """
        from locust import MarkovTaskSet, transition

        class M(MarkovTaskSet):
            @transition("b")
            def a(self):
                pass

            @transition("a")
            def b(self):
                self.interrupt()
        """
    )
    assert "async def a(self):" in out and "async def b(self):" in out


def test_a_wrapper_class_around_the_client_is_followed_through_its_instances() -> None:
    out = conv(
        """
        from locust import HttpUser, task

        class Api:
            def __init__(self, client):
                self.client = client

            def items(self):
                return self.client.get("/items").json()

        class U(HttpUser):
            def on_start(self):
                self.api = Api(self.client)

            @task
            def t(self):
                self.api.items()
                local = Api(self.client)
                local.items()
        """
    )
    assert "async def items(self):" in out
    assert 'return (await self.client.get("/items")).json()' in out
    assert out.count("await self.api.items()") == 1 and "await local.items()" in out
    assert "def __init__(self, client):" in out
