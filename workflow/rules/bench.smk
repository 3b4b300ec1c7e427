# The speed races of the heads against KV-cached AR decoding, each in one process: every tau x
# heads setting (with typical acceptance) and tree sizes. AR's own race is in model.smk, the
# draft model's in draft.smk, the open questions' in open.smk.


def raced_heads(wildcards):
    """The Hydra heads a MEDUSA mode's bench races beside its own (none without
    measure.hydra)."""
    if wildcards.mode not in HYDRA_OF:
        return []
    return [PLAN.heads(wildcards.family, HYDRA_OF[wildcards.mode])]


rule bench_vadusa:
    """Every tau x heads setting (and typical acceptance) against AR in one process; a MEDUSA
    mode's race also runs its Hydra twin's settings (named hydra-..., hydra-joint-...)."""
    input:
        model=rules.train_heads.output,
        also=raced_heads,
    output:
        PLAN.bench_vadusa(),
    params:
        config_digest=PLAN.digest("bench_vadusa"),
        taus=" ".join(str(t) for t in CFG.measure.bench_taus),
        heads=" ".join(str(k) for k in CFG.measure.bench_heads),
        also=lambda wildcards, input: (f"--also-heads {' '.join(input.also)}" if input.also
                                       else ""),
    log:
        PLAN.log("bench_{family}_vadusa_{mode}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} {params.also} --split test "
        "--corpus {CORPUS} --limit {CFG.measure.bench_utterances} --batch-sizes "
        "--tau {params.taus} --heads {params.heads} --typical --out {output} > {log} 2>&1"


rule bench_trees:
    """Tree size against speed: on a CPU a big tree's verification pass costs more than its
    extra accepted tokens buy; this race says which size wins on the machine it runs on."""
    input:
        rules.train_heads.output,
    output:
        PLAN.bench_trees(),
    params:
        config_digest=PLAN.digest("bench_trees"),
        trees=" ".join(CFG.measure.bench_trees),
    log:
        PLAN.log("bench_{family}_trees_{mode}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.measure.bench_utterances} --batch-sizes --tau {CFG.measure.eval_taus[0]} "
        "--heads 0 --tree {params.trees} --out {output} > {log} 2>&1"
