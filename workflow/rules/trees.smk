# Acceptance calibration per family, head mode and tolerance tau: the heads decode dev
# utterances, and trees of each of heads.tree_sizes nodes are built from what they accepted.


rule calibrate:
    input:
        rules.train_heads.output,
    output:
        f"{RESULTS}/trees/{{family}}/{{mode}}/tau{{tau}}/acceptance.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.calibration_utterances",
                                       "heads.tree_sizes", exclude=NOT_DRAFT),
        nodes=" ".join(str(n) for n in CFG.heads.tree_sizes),
    log:
        f"{LOGS}/calibrate_{{family}}_{{mode}}_tau{{tau}}.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa calibrate --config {RESOLVED} --checkpoint {input} --split dev "
        "--corpus {CORPUS} --limit {CFG.heads.calibration_utterances} --tau {wildcards.tau} "
        "--nodes {params.nodes} "
        "--out {RESULTS}/trees/{wildcards.family}/{wildcards.mode}/tau{wildcards.tau} "
        "> {log} 2>&1"
