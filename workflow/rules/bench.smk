# The speed races of the heads against KV-cached AR decoding, each in one process: every tau x
# heads setting (with typical acceptance), the same beside the other kinds of heads (Hydra,
# shared: reproduce_all), and tree sizes. AR's own race is in model.smk, the
# draft model's in draft.smk, the open questions' in open.smk.


def raced_heads(wildcards):
    """The heads of other kinds a MEDUSA mode's races run beside its own: its Hydra twin
    (measure.hydra) and the shared heads (measure.shared, the frozen mode's)."""
    return [PLAN.heads(wildcards.family, twin)
            for twin in PLAN.twins_of(wildcards.family).get(wildcards.mode, [])]


def also_heads(wildcards, input):
    return f"--also-heads {' '.join(input.also)}" if input.also else ""


rule bench_vadusa:
    """Every tau x heads setting (and typical acceptance) of a MEDUSA mode against AR in one
    process (default target)."""
    input:
        model=rules.train_heads.output,
    output:
        PLAN.bench_vadusa(),
    params:
        config_digest=PLAN.digest("bench_vadusa"),
        taus=" ".join(str(t) for t in CFG.measure.bench_taus),
        heads=" ".join(str(k) for k in CFG.measure.bench_heads),
    log:
        PLAN.log("bench_{family}_vadusa_{mode}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit {CFG.measure.bench_utterances} --batch-sizes "
        "--tau {params.taus} --heads {params.heads} --typical --out {output} > {log} 2>&1"


rule bench_twins:
    """bench_vadusa's race with the MEDUSA mode's twins beside it (its Hydra twin, the shared
    heads; settings named hydra-..., hydra-joint-..., shared-...), so the kinds of heads are
    compared in one process (reproduce_all: the default target trains and races MEDUSA's)."""
    input:
        model=rules.train_heads.output,
        also=raced_heads,
    output:
        PLAN.bench_twins(),
    params:
        config_digest=PLAN.digest("bench_twins"),
        taus=" ".join(str(t) for t in CFG.measure.bench_taus),
        heads=" ".join(str(k) for k in CFG.measure.bench_heads),
        also=also_heads,
    log:
        PLAN.log("bench_{family}_twins_{mode}"),
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
    extra accepted tokens buy; this race says which size wins on the machine it runs on, for
    the mode's heads and their twins of other kinds (as bench_vadusa's). It chooses the tree,
    so it decodes dev utterances (TREE_RACE_SPLIT)."""
    input:
        model=rules.train_heads.output,
        also=raced_heads,
    output:
        PLAN.bench_trees(),
    params:
        config_digest=PLAN.digest("bench_trees"),
        trees=" ".join(CFG.measure.bench_trees),
        also=also_heads,
    log:
        PLAN.log("bench_{family}_trees_{mode}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} {params.also} "
        f"--split {TREE_RACE_SPLIT} "
        "--corpus {CORPUS} --limit {CFG.measure.bench_utterances} --batch-sizes "
        "--tau {CFG.measure.eval_taus[0]} "
        "--heads 0 --tree {params.trees} --out {output} > {log} 2>&1"
