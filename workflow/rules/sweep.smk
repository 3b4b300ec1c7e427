# The decoding settings' sweep per family and head mode: speed against WER, its Pareto front,
# and the setting chosen (chosen.yaml, a config `vadusa decode` reads).


SWEEP_DIR = f"{RESULTS}/sweep/{{family}}/{{mode}}"
SWEEP_FOLDER = ("Sweep", "{family}, {mode} heads")  # the report's category, subcategory


rule sweep:
    """Optuna over tau, heads used and tree size (and sampling, if configured): speedup against
    AR in the same run vs judge WER, on the first sweep.utterances of sweep.split. A killed
    sweep resumes from its study.db; a finished one is not re-run."""
    input:
        model=rules.train_heads.output,
        vocoder=vocoder_for,
    output:
        chosen=f"{SWEEP_DIR}/chosen.yaml",
        trials=reported(f"{SWEEP_DIR}/trials.csv", "sweep_csv", *SWEEP_FOLDER, "table (CSV)",
                        "every trial"),
        pareto=reported(f"{SWEEP_DIR}/pareto.csv", "sweep_csv", *SWEEP_FOLDER, "table (CSV)",
                        "the Pareto front's trials"),
        pareto_plot=reported(f"{SWEEP_DIR}/pareto.png", "sweep_pareto", *SWEEP_FOLDER, "figure",
                             "WER against speedup"),
        tau_plot=reported(f"{SWEEP_DIR}/tau.png", "sweep_tau", *SWEEP_FOLDER, "figure",
                          "tau against speedup and WER"),
        heads_plot=reported(f"{SWEEP_DIR}/heads.png", "sweep_heads", *SWEEP_FOLDER, "figure",
                            "heads used against accepted length"),
        tree_plot=reported(f"{SWEEP_DIR}/tree.png", "sweep_tree", *SWEEP_FOLDER, "figure",
                           "tree size against time per forward"),
    params:
        config_digest=CFG.section_hash("decoding", "sweep", "judge",
                                       exclude=JUDGE_EVAL_ONLY + NOT_DRAFT),
        out=lambda wildcards: f"{RESULTS}/sweep/{wildcards.family}/{wildcards.mode}",
    log:
        f"{LOGS}/sweep_{{family}}_{{mode}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa sweep --config {RESOLVED} --checkpoint {input.model} --corpus {CORPUS} "
        "--vocoder {input.vocoder} --out {params.out} > {log} 2>&1"
