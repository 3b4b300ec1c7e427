# The decoding settings' sweep per family and head mode: speed against WER, its Pareto front,
# and the setting chosen (chosen.yaml, a config `vadusa decode` reads).


SWEEP_FOLDER = ("Sweep", "{family}, {mode} heads")  # the report's category, subcategory


rule sweep:
    """Optuna over tau, heads used and tree size (and sampling, if configured): speedup against
    AR in the same run vs judge WER, on the first sweep.utterances of sweep.split. A killed
    sweep resumes from its study.db; a finished one is not re-run."""
    input:
        unpack(vocoding),
        model=rules.train_heads.output,
    output:
        chosen=PLAN.sweep(name="chosen.yaml"),
        trials=reported(PLAN.sweep(name="trials.csv"), "sweep_csv", *SWEEP_FOLDER,
                        "table (CSV)", "every trial"),
        pareto=reported(PLAN.sweep(name="pareto.csv"), "sweep_csv", *SWEEP_FOLDER,
                        "table (CSV)", "the Pareto front's trials"),
        pareto_plot=reported(PLAN.sweep(name="pareto.png"), "sweep_pareto", *SWEEP_FOLDER,
                             "figure", "WER against speedup"),
        tau_plot=reported(PLAN.sweep(name="tau.png"), "sweep_tau", *SWEEP_FOLDER, "figure",
                          "tau against speedup and WER"),
        heads_plot=reported(PLAN.sweep(name="heads.png"), "sweep_heads", *SWEEP_FOLDER,
                            "figure", "heads used against accepted length"),
        tree_plot=reported(PLAN.sweep(name="tree.png"), "sweep_tree", *SWEEP_FOLDER, "figure",
                           "tree size against time per forward"),
    params:
        nar=nar_argument,
        config_digest=PLAN.digest("sweep"),
        out=lambda wildcards: PLAN.sweep(wildcards.family, wildcards.mode),
    log:
        PLAN.log("sweep_{family}_{mode}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa sweep --config {RESOLVED} --checkpoint {input.model} --corpus {CORPUS} "
        "--vocoder {input.vocoder} {params.nar} --out {params.out} > {log} 2>&1"
