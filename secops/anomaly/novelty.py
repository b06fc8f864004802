"""Rare templates: online template mining with Drain3, novelty after a learning period.

Each ``rare_template`` rule owns a Drain3 miner (addresses, numbers and hex masked
before mining, at most ``MAX_CLUSTERS`` templates kept). A line is novel when it creates
a template after the rule has learnt for ``learn`` seconds of log time; repeats of a
novel template while its alert is open extend that alert.
"""

from __future__ import annotations

import logging

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner_config import TemplateMinerConfig

MAX_CLUSTERS = 10_000
MASKS = (
    (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.])", "IP"),
    (r"(?<![\w:])[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7}(?![\w:])", "IP"),
    (r"\b0x[0-9a-fA-F]+\b|\b[0-9a-fA-F]{12,}\b", "HEX"),
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])", "NUM"),
)
logging.getLogger("drain3").setLevel(logging.WARNING)


class TemplateState(PersistenceHandler):
    """Where a miner's templates outlive the process (Drain3's persistence handler), and
    when its learning began."""

    def learning_started(self, ts: float) -> float:
        """The stored start of learning, set to ``ts`` when there is none yet."""
        raise NotImplementedError


class TemplateNovelty:
    def __init__(self, learn: float, state: TemplateState | None = None) -> None:
        config = TemplateMinerConfig()
        config.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
        config.drain_max_clusters = MAX_CLUSTERS
        config.drain_sim_th = 0.5
        config.snapshot_interval_minutes = 10
        self.miner = TemplateMiner(persistence_handler=state, config=config)
        self.state = state
        self.learn = learn
        self.start: float | None = None

    def add(self, ts: float, text: str) -> tuple[bool, int]:
        """Mine ``text``; (whether it is a never-seen template past learning, template id)."""
        if self.start is None:
            self.start = self.state.learning_started(ts) if self.state is not None else ts
        result = self.miner.add_log_message(text)
        created = result["change_type"] == "cluster_created"
        return created and ts - self.start >= self.learn, int(result["cluster_id"])

    def template(self, cluster_id: int) -> str:
        for cluster in self.miner.drain.clusters:
            if cluster.cluster_id == cluster_id:
                return str(cluster.get_template())
        return ""
