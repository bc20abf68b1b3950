"""Prompt templates: TOML sections rendered by Jinja2's sandbox; every fault is one line
naming the file and section; no code runs; each role has a shipped default."""

from __future__ import annotations

import pytest

from agents.vsm.prompts.template import ROLES, PromptTemplate, TemplateError, default_template

BASE = {
    "role": "s1",
    "task_id": "t-1",
    "step": 0,
    "iteration": 1,
    "text": "count the lines",
    "description": "a task",
    "cwd": "/srv",
    "context": [],
    "context_text": "",
    "compaction": None,
    "reminders": ["be brief"],
    "budget": 1000,
}


def test_sections_render_in_order_and_empty_ones_are_left_out():
    t = PromptTemplate.parse(
        'order = ["task", "system", "reminders"]\n'
        'system = "You are {{ role }}."\n'
        'task = "Do: {{ text }}"\n'
        'reminders = "{% for r in reminders %}<r>{{ r }}</r>{% endfor %}"\n'
        'context = "{{ context_text }}"\n'
    )
    assert t.render(BASE) == "Do: count the lines\n\nYou are s1.\n\n<r>be brief</r>"
    assert t.render({**BASE, "reminders": []}) == "Do: count the lines\n\nYou are s1."


def test_examples_come_from_the_file():
    t = PromptTemplate.parse(
        'examples = "{% for x in examples %}{{ x.input }} -> {{ x.output }};{% endfor %}"\n'
        '[[example]]\ninput = "a"\noutput = "b"\n'
    )
    assert t.render(BASE) == "a -> b;"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("system = ", "not TOML"),
        ('sytem = "x"', "unknown key 'sytem'"),
        ('task = "{{ text "', "section 'task' line 1"),
        ("task = 3", "section 'task' must be a string"),
        ('role = "s1"', "no section"),
        ('order = ["nope"]\ntask = "x"', "order must list sections"),
    ],
)
def test_bad_templates_are_one_line_errors(text, says):
    with pytest.raises(TemplateError) as err:
        PromptTemplate.parse(text, "bad.toml")
    message = str(err.value)
    assert says in message and message.startswith("bad.toml: ") and "\n" not in message


def test_a_misspelt_name_is_an_error_at_render():
    t = PromptTemplate.parse('task = "{{ txet }}"', "t.toml")
    with pytest.raises(TemplateError, match=r"t\.toml: section 'task': 'txet' is undefined"):
        t.render(BASE)


@pytest.mark.parametrize(
    "body",
    [
        "{{ text.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ reminders.append('x') }}",
    ],
)
def test_no_code_runs(body):
    t = PromptTemplate.parse(f'task = "{body}"', "evil.toml")
    with pytest.raises(TemplateError, match=r"evil\.toml: section 'task'"):
        t.render(BASE)


def test_every_role_has_a_default_that_renders():
    for role in ROLES:
        t = default_template(role)
        text = t.render({**BASE, "role": role})
        assert "count the lines" in text and "be brief" in text
    with pytest.raises(TemplateError, match="no default template for role 's2'"):
        default_template("s2")


def test_a_section_cannot_render_without_bound():
    t = PromptTemplate.parse(
        'task = "{% for i in range(99999) %}{% for j in range(999) %}xxxxxxxx{% endfor %}'
        '{% endfor %}"',
        "big.toml",
    )
    with pytest.raises(TemplateError, match=r"big\.toml: section 'task': renders more than"):
        t.render(BASE)
