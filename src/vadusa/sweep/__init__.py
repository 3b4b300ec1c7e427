"""Optuna sweeps over VADUSA's decoding settings (``vadusa sweep``).

    study.py      storage (SQLite, journal file, RDB URL), the search space, running a study
                  to a number of completed trials, reclaiming trials of killed workers
    objective.py  one trial: decode the same utterances with AR and with the trial's VADUSA
                  setting in one process (speedup), vocode and judge them (WER)
    report.py     trials and Pareto front as CSV, the chosen setting as a config file the
                  decoder reads, and the plots
"""
