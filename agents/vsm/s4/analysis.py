"""S4's analysis of a task, before it runs: complexity, domains, risks, an approach (pure).

Complexity is a score: every keyword, scope and domain rule that matches the task's text
adds its weight once, each step beyond the first adds `per_step`; the score against two
thresholds gives simple, medium or complex. The rules are data (agents/data/analysis.toml,
extendable with $AMCP_ANALYSIS_RULES), so a user teaches S4 about their own work without
code. While completion falls (the lower_complexity adaptation) the thresholds are scaled
down, so more tasks get the careful treatment of a higher class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.vsm.ruledata import compile_pattern, load_rules
from amcp.errors import ConfigError

__all__ = [
    "COMPLEXITIES",
    "AnalysisRules",
    "Approach",
    "Complexity",
    "Risk",
    "RiskLevel",
    "TaskAnalysis",
    "TrafficPicture",
    "analyse_task",
]

Complexity = Literal["simple", "medium", "complex"]
RiskLevel = Literal["low", "medium", "high"]
COMPLEXITIES: tuple[Complexity, ...] = ("simple", "medium", "complex")
_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")
RULES_ENV = "AMCP_ANALYSIS_RULES"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Risk(_Frozen):
    level: RiskLevel
    what: str


class Approach(_Frozen):
    """How S4 recommends going about the task."""

    mode: str = Field(description="direct, plan, or plan and review")
    max_iterations: int = Field(ge=1, le=10, description="audit-and-retry rounds allowed")
    review: bool = Field(description="each result reviewed independently")
    parallel: bool = Field(description="the steps are independent and may run at once")
    capabilities: tuple[str, ...] = Field(default=(), description="S1 capabilities preferred")
    required: tuple[str, ...] = Field(default=(), description="S1 capabilities required")


class TrafficPicture(_Frozen):
    """What netopt's analyser makes of the bus traffic S4 has seen lately."""

    seconds: float = 0.0
    total_rate: float = 0.0
    families: tuple[dict[str, Any], ...] = ()
    note: str = "no traffic observed yet"


class TaskAnalysis(_Frozen):
    complexity: Complexity
    score: float
    thresholds: tuple[float, float]
    given: Complexity | None = Field(None, description="the complexity the user asked for")
    reasons: tuple[str, ...]
    domains: tuple[str, ...]
    risks: tuple[Risk, ...]
    risk_level: RiskLevel
    approach: Approach
    traffic: TrafficPicture = TrafficPicture()


@dataclass(frozen=True)
class _ScoreRule:
    pattern: re.Pattern[str]
    score: float
    why: str


@dataclass(frozen=True)
class _DomainRule:
    name: str
    pattern: re.Pattern[str]
    score: float
    capability: str | None
    required: bool
    sequential: bool
    risks: tuple[str, ...]


@dataclass(frozen=True)
class _RiskRule:
    pattern: re.Pattern[str]
    level: RiskLevel
    risk: str


@dataclass(frozen=True)
class _ApproachRule:
    mode: str
    max_iterations: int
    review: bool


def _number(doc: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key} must be a number >= 0, not {value!r}")
    return float(value)


def _text(doc: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _tables(doc: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ConfigError(f"analysis rules: [[{key}]] must be a list of tables")
    return [(f"analysis rules [[{key}]] #{n + 1}", item) for n, item in enumerate(items)]


@dataclass(frozen=True)
class AnalysisRules:
    """The compiled rules; `AnalysisRules.load()` reads the packaged and the user's files."""

    medium: float
    complex: float
    per_step: float
    lowered: float
    busy_rate: float
    keywords: tuple[_ScoreRule, ...]
    scopes: tuple[_ScoreRule, ...]
    domains: tuple[_DomainRule, ...]
    risks: tuple[_RiskRule, ...]
    approaches: Mapping[Complexity, _ApproachRule]

    @classmethod
    def load(cls, *extra: Path) -> AnalysisRules:
        return cls.from_doc(load_rules("analysis.toml", RULES_ENV, extra))

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> AnalysisRules:
        """Validate a rules document; ConfigError names the first bad entry."""
        levels = doc.get("complexity", {})
        where = "analysis rules [complexity]"
        medium, complex_ = _number(levels, "medium", where), _number(levels, "complex", where)
        if not 0 < medium <= complex_:
            raise ConfigError(f"{where}: need 0 < medium <= complex")
        lowered = _number(levels, "lowered", where, 0.5)
        if not 0 < lowered <= 1:
            raise ConfigError(f"{where}: lowered must be in (0, 1]")

        def scored(key: str) -> tuple[_ScoreRule, ...]:
            return tuple(
                _ScoreRule(
                    compile_pattern(t.get("pattern"), w), _number(t, "score", w), _text(t, "why", w)
                )
                for w, t in _tables(doc, key)
            )

        domains = []
        for w, t in _tables(doc, "domain"):
            risks = t.get("risks", [])
            if not isinstance(risks, list) or not all(isinstance(r, str) for r in risks):
                raise ConfigError(f"{w}: risks must be a list of strings")
            capability = t.get("capability")
            if capability is not None and not isinstance(capability, str):
                raise ConfigError(f"{w}: capability must be a string")
            domains.append(
                _DomainRule(
                    _text(t, "name", w),
                    compile_pattern(t.get("pattern"), w),
                    _number(t, "score", w, 0.0),
                    capability,
                    bool(t.get("required", False)),
                    bool(t.get("sequential", False)),
                    tuple(risks),
                )
            )
        risks = []
        for w, t in _tables(doc, "risk"):
            level = t.get("level", "medium")
            if level not in _LEVELS:
                raise ConfigError(f"{w}: level must be one of {', '.join(_LEVELS)}")
            risks.append(
                _RiskRule(compile_pattern(t.get("pattern"), w), level, _text(t, "risk", w))
            )
        approaches = {}
        for name in COMPLEXITIES:
            a = doc.get("approach", {}).get(name)
            w = f"analysis rules [approach.{name}]"
            if not isinstance(a, Mapping):
                raise ConfigError(f"{w} is missing")
            iterations = a.get("max_iterations")
            if not isinstance(iterations, int) or not 1 <= iterations <= 10:
                raise ConfigError(f"{w}: max_iterations must be an integer 1-10")
            approaches[name] = _ApproachRule(
                _text(a, "mode", w), iterations, bool(a.get("review", False))
            )
        return cls(
            medium=medium,
            complex=complex_,
            per_step=_number(levels, "per_step", where, 1.0),
            lowered=lowered,
            busy_rate=_number(doc.get("traffic", {}), "busy_rate", "[traffic]", 2000.0),
            keywords=scored("keyword"),
            scopes=scored("scope"),
            domains=tuple(domains),
            risks=tuple(risks),
            approaches=approaches,
        )


def _classify(score: float, medium: float, complex_: float) -> Complexity:
    if score >= complex_:
        return "complex"
    return "medium" if score >= medium else "simple"


def analyse_task(
    texts: Sequence[str],
    rules: AnalysisRules,
    *,
    steps: int = 1,
    given: Complexity | None = None,
    lowered: bool = False,
    traffic: TrafficPicture | None = None,
) -> TaskAnalysis:
    """Analyse a task from its texts (description and steps); `given` is the user's own
    complexity, which wins over the computed one (the reasons still show both)."""
    text = "\n".join(texts)
    score = 0.0
    reasons: list[str] = []
    for rule in (*rules.keywords, *rules.scopes):
        found = rule.pattern.search(text)
        if found and rule.score:
            score += rule.score
            reasons.append(f"{rule.why} ({found.group(0)!r}, +{rule.score:g})")
    domains: list[_DomainRule] = [d for d in rules.domains if d.pattern.search(text)]
    for d in domains:
        if d.score:
            score += d.score
            reasons.append(f"domain {d.name} (+{d.score:g})")
    if steps > 1 and rules.per_step:
        extra = rules.per_step * (steps - 1)
        score += extra
        reasons.append(f"{steps} steps (+{extra:g})")
    factor = rules.lowered if lowered else 1.0
    thresholds = (rules.medium * factor, rules.complex * factor)
    computed = _classify(score, *thresholds)
    if lowered:
        reasons.append(f"thresholds lowered x{factor:g} while completion is poor")
    complexity = given or computed
    if given is not None and given != computed:
        reasons.append(f"given as {given} (the rules say {computed})")

    risks = [Risk(level=r.level, what=r.risk) for r in rules.risks if r.pattern.search(text)]
    risks += [Risk(level="medium", what=f"{d.name}: {what}") for d in domains for what in d.risks]
    traffic = traffic or TrafficPicture()
    if traffic.total_rate > rules.busy_rate:
        risks.append(Risk(level="medium", what=f"busy bus: {traffic.total_rate:.0f} messages/s"))
    risk_level = max((r.level for r in risks), key=_LEVELS.index, default="low")
    plan = rules.approaches[complexity]
    sequential = any(d.sequential for d in domains) or risk_level == "high"
    approach = Approach(
        mode=plan.mode,
        max_iterations=plan.max_iterations,
        review=plan.review,
        parallel=steps > 1 and not sequential,
        capabilities=_unique(d.capability for d in domains if d.capability),
        required=_unique(d.capability for d in domains if d.capability and d.required),
    )
    return TaskAnalysis(
        complexity=complexity,
        score=round(score, 6),
        thresholds=thresholds,
        given=given,
        reasons=tuple(reasons),
        domains=tuple(d.name for d in domains),
        risks=tuple(risks),
        risk_level=risk_level,
        approach=approach,
        traffic=traffic,
    )


def _unique(items: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))
