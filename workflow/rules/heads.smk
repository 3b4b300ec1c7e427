# VADUSA's draft heads per family: heads on the frozen base (mode "frozen") and base + heads
# trained together (mode "joint", VADUSA-wt); with heads.hydra, Hydra heads in both ways too
# (modes "hydra", "hydra-joint"). The later stages read them: trees.smk (acceptance
# calibration), bench.smk (the speed races against KV-cached AR decoding), evaluate.smk (WER at
# chosen tolerances), sweep.smk, tables.smk and open.smk.


# mode: the heads (below); tau: the acceptance tolerance (trees.smk, evaluate.smk)
wildcard_constraints:
    mode="frozen|joint|hydra|hydra-joint",
    tau=r"\d+",


# the head modes the workflow builds, and which Hydra mode races beside which MEDUSA one
HYDRA_OF = {"frozen": "hydra", "joint": "hydra-joint"} if CFG.heads.hydra else {}
HEAD_MODES = ["frozen", "joint", *HYDRA_OF.values()]


rule train_heads:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/{{mode}}/heads.pt",
    params:
        config_digest=CFG.section_hash("seed", *HeadsConfig.training_keys()),
        command=lambda wildcards: ("train-joint" if wildcards.mode.endswith("joint")
                                   else "train-heads"),
        kind=lambda wildcards: "hydra" if wildcards.mode.startswith("hydra") else "medusa",
    log:
        f"{LOGS}/train_heads_{{family}}_{{mode}}.log",
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa {params.command} --config {RESOLVED} --set heads.kind={params.kind} "
        "--checkpoint {input.model} --corpus {CORPUS} --tokens {TOKENS}/{wildcards.family} "
        "--out {RESULTS}/models/{wildcards.family}/{wildcards.mode} > {log} 2>&1"
