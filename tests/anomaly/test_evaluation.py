"""Detection quality on a simulated day the rules were not tuned on.

The simulator (``logsim``) describes traffic, noise and attacks, not the rules. An
alert is correct when it names an entity of an injected incident and overlaps its time
span (ten minutes' slack either side); an incident is found when a correct alert of its
family exists. The day before the scored one is background only: the detector learns from
it as a deployment learns from the history it keeps, and its alerts are not scored.
Goals: incident recall >= 0.95, alert precision >= 0.9, at most two false alerts per
simulated day.
"""

from __future__ import annotations

from pathlib import Path

from secops.anomaly import Detector, RuleSet
from secops.anomaly.reading import merged, open_log
from tests.anomaly.logsim import ATTACKS, DAY, DAY0, Day, simulate

SLACK = 600.0
HELD_OUT_SEED = 23   # seeds 1-6 and 11 were looked at while writing rules and simulator; not this


def overlaps(alert, incident) -> bool:
    return ((alert.entity_type, alert.entity) in incident.entities
            and alert.start <= incident.end + SLACK and incident.start - SLACK <= alert.end)


def scored(alerts):
    """Alerts of the scored day (the history day before it is learning time)."""
    return [a for a in alerts if a.end >= DAY0]


def score(day: Day, alerts) -> dict[str, float]:
    family = {r.id: r.family for r in RuleSet.shipped().rules}
    correct = [a for a in alerts if any(overlaps(a, i) for i in day.incidents)]
    found = [i for i in day.incidents
             if any(family[a.rule] == i.family and overlaps(a, i) for a in alerts)]
    days = DAY / 86400
    return {"recall": len(found) / len(day.incidents),
            "precision": len(correct) / len(alerts) if alerts else 0.0,
            "false_per_day": (len(alerts) - len(correct)) / days,
            "missed": [i.family for i in day.incidents if i not in found],
            "false": [a for a in alerts if a not in correct]}


def test_simulated_day_meets_the_goals(tmp_path):
    day = simulate(HELD_OUT_SEED, history_days=1)
    assert len(day.incidents) == 2 * len(ATTACKS)
    assert {i.family for i in day.incidents} == {
        "brute_force", "password_spraying", "credential_stuffing", "rate_limit_abuse", "scanning",
        "sudo_abuse", "secret_in_log", "first_seen", "gdpr_request", "exfiltration", "rate_spike",
        "rare_template"}
    paths = day.write(tmp_path)
    logs = [open_log(Path(p)) for p in paths]
    detector = Detector(baseline_ips=day.baseline)
    detector.feed_all(merged(events for _, events in logs))
    alerts = scored(detector.finish())
    assert [log.format for log, _ in logs] == ["syslog", "combined", "jsonl"]
    assert sum(log.stats.malformed for log, _ in logs) == 0
    result = score(day, alerts)
    print(f"\nsimulated day (seed {HELD_OUT_SEED}): {day.lines} lines, {len(day.incidents)} incidents, "
          f"{len(alerts)} alerts; {result}")
    assert result["recall"] >= 0.95, result
    assert result["precision"] >= 0.9, result
    assert result["false_per_day"] <= 2, result


def test_the_scorer_counts_misses_and_false_alerts():
    """The scorer itself, on a day with no detections and on a wrong alert."""
    from secops.anomaly.detector import Alert
    from tests.anomaly.logsim import Incident
    day = Day(0, incidents=[Incident("scanning", {("ip", "192.0.2.1")}, 1000.0, 2000.0),
                            Incident("brute_force", {("ip", "192.0.2.2")}, 5000.0, 5100.0)])
    right = Alert("http-404-scanning", "medium", "192.0.2.1", "ip", 1500.0, 1600.0, 30, ())
    wrong_time = Alert("http-404-scanning", "medium", "192.0.2.1", "ip", 9000.0, 9100.0, 30, ())
    wrong_family = Alert("http-404-scanning", "medium", "192.0.2.2", "ip", 5000.0, 5050.0, 30, ())
    got = score(day, [right, wrong_time, wrong_family])
    assert got == {"recall": 0.5, "precision": 2 / 3, "false_per_day": 1.0, "missed": ["brute_force"],
                   "false": [wrong_time]}
