"""The Jinja environment: templates read the environment's globals without a ChainMap."""

from __future__ import annotations

import pytest
from jinja2 import DictLoader

from app import create_app
from app.templating import Environment

pytestmark = pytest.mark.unit


@pytest.fixture
def env():
    environment = create_app().jinja_env
    assert isinstance(environment, Environment)
    environment.loader = DictLoader({"page.html": "{{ greeting }}, {{ name }}"})
    return environment


def test_a_template_reads_the_environments_globals_and_sees_later_ones(env):
    env.globals["greeting"] = "Hello"
    page = env.get_template("page.html")
    assert page.globals is env.globals  # no ChainMap to copy on each render
    assert page.render(name="Alice") == "Hello, Alice"
    env.globals["greeting"] = "Hi"
    assert page.render(name="Alice") == "Hi, Alice"


def test_render_variables_win_over_globals_and_do_not_leak_into_them(env):
    env.globals["greeting"] = "Hello"
    assert env.get_template("page.html").render(greeting="Hey", name="Bob") == "Hey, Bob"
    assert env.globals["greeting"] == "Hello"
    assert "name" not in env.globals


def test_a_template_given_its_own_globals_keeps_them_to_itself(env):
    env.globals["greeting"] = "Hello"
    own = env.from_string("{{ greeting }}", globals={"greeting": "Howdy"})
    assert own.render() == "Howdy"
    assert env.globals["greeting"] == "Hello"
    assert env.get_template("page.html").render(name="Carol") == "Hello, Carol"
