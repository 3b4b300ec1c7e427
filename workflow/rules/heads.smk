# VADUSA's draft heads per family: heads on the frozen base (mode "frozen") and base + heads
# trained together (mode "joint", VADUSA-wt); with measure.hydra, Hydra heads in both ways too
# (modes "hydra", "hydra-joint"); with measure.shared, shared heads on the frozen base (mode
# "shared"); those two for the families of measure.hydra_shared_families (PLAN.head_modes).
# The later stages read them: trees.smk (acceptance
# calibration), bench.smk (the speed races against KV-cached AR decoding), evaluate.smk (WER at
# chosen tolerances), sweep.smk, tables.smk and open.smk.


# mode: the heads (below); tau: the acceptance tolerance (trees.smk, evaluate.smk)
wildcard_constraints:
    mode="|".join(HEAD_MODES),
    tau=r"\d+",


rule train_heads:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        PLAN.heads(),
    params:
        config_digest=PLAN.digest("train_heads"),
        command=lambda wildcards: ("train-joint" if wildcards.mode.endswith("joint")
                                   else "train-heads"),
        kind=lambda wildcards: mode_kind(wildcards.mode),
    log:
        PLAN.log("train_heads_{family}_{mode}"),
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa {params.command} --config {RESOLVED} --set heads.kind={params.kind} "
        f"--checkpoint {{input.model}} --corpus {{CORPUS}} --tokens {in_shell(PLAN.tokens())} "
        f"--out {in_shell(PLAN.heads_dir())} > {{log}} 2>&1"
