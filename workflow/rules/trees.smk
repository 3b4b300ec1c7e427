# Acceptance calibration per family, head mode and tolerance tau: the heads decode dev
# utterances, and trees of each of measure.tree_sizes nodes are built from what they accepted.


rule calibrate:
    input:
        rules.train_heads.output,
    output:
        PLAN.acceptance(),
    params:
        config_digest=PLAN.digest("calibrate"),
        nodes=" ".join(str(n) for n in CFG.measure.tree_sizes),
    log:
        PLAN.log("calibrate_{family}_{mode}_tau{tau}"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa calibrate --config {RESOLVED} --checkpoint {input} --split dev "
        "--corpus {CORPUS} --limit {CFG.measure.calibration_utterances} --tau {wildcards.tau} "
        "--nodes {params.nodes} "
        f"--out {in_shell(PLAN.trees())} "
        "> {log} 2>&1"
