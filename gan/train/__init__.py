"""Training: the two-phase plan (pre-training, then genre fine-tuning) over one run folder.

`run_training` (in gan.train.run, beside the run folder it drives) is the entry point; the loop
of one phase is gan.train.loop.
"""

from gan.train.loop import PhaseTrainer, TrainingDiverged
from gan.train.run import PhasePlan, RunFolder, TrainingPlan, run_training
from gan.train.stopping import TrainingStopped

__all__ = ["PhasePlan", "PhaseTrainer", "RunFolder", "TrainingDiverged", "TrainingPlan", "TrainingStopped",
           "run_training"]
