# VADUSA per family: draft heads on the frozen base (mode "frozen") and base + heads trained
# together (mode "joint", VADUSA-wt); acceptance calibration and trees; the speed benchmark
# against KV-cached AR decoding in one process; WER of VADUSA decoding at chosen tolerances.


wildcard_constraints:
    mode="frozen|joint",
    tau=r"\d+",


rule train_heads:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/{{mode}}/heads.pt",
    params:
        config_digest=CFG.section_hash("seed", *HeadsConfig.training_keys()),
        command=lambda wildcards: "train-heads" if wildcards.mode == "frozen" else "train-joint",
    log:
        f"{LOGS}/train_heads_{{family}}_{{mode}}.log",
    threads: 2
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa {params.command} --config {RESOLVED} --checkpoint {input.model} "
        "--corpus {CORPUS} --tokens {TOKENS}/{wildcards.family} "
        "--out {RESULTS}/models/{wildcards.family}/{wildcards.mode} > {log} 2>&1"


rule calibrate:
    input:
        rules.train_heads.output,
    output:
        f"{RESULTS}/trees/{{family}}/{{mode}}/tau{{tau}}/acceptance.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.calibration_utterances",
                                       "heads.tree_sizes"),
        nodes=" ".join(str(n) for n in CFG.heads.tree_sizes),
    log:
        f"{LOGS}/calibrate_{{family}}_{{mode}}_tau{{tau}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa calibrate --config {RESOLVED} --checkpoint {input} --split dev "
        "--corpus {CORPUS} --limit {CFG.heads.calibration_utterances} --tau {wildcards.tau} "
        "--nodes {params.nodes} "
        "--out {RESULTS}/trees/{wildcards.family}/{wildcards.mode}/tau{wildcards.tau} "
        "> {log} 2>&1"


rule bench_vadusa:
    input:
        rules.train_heads.output,
    output:
        f"{RESULTS}/bench/{{family}}/vadusa-{{mode}}.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.bench_taus", "heads.bench_heads",
                                       "heads.bench_utterances"),
        taus=" ".join(str(t) for t in CFG.heads.bench_taus),
        heads=" ".join(str(k) for k in CFG.heads.bench_heads),
    log:
        f"{LOGS}/bench_{{family}}_vadusa_{{mode}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.heads.bench_utterances} --batch-sizes --tau {params.taus} "
        "--heads {params.heads} --typical --out {output} > {log} 2>&1"


rule bench_trees:
    """Tree size against speed: on a CPU a big tree's verification pass costs more than its
    extra accepted tokens buy; this race says which size wins on the machine it runs on."""
    input:
        rules.train_heads.output,
    output:
        f"{RESULTS}/bench/{{family}}/trees-{{mode}}.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.bench_trees", "heads.eval_taus",
                                       "heads.bench_utterances"),
        trees=" ".join(CFG.heads.bench_trees),
    log:
        f"{LOGS}/bench_{{family}}_trees_{{mode}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.heads.bench_utterances} --batch-sizes --tau {CFG.heads.eval_taus[0]} "
        "--heads 0 --tree {params.trees} --out {output} > {log} 2>&1"


rule evaluate_vadusa:
    input:
        model=rules.train_heads.output,
        vocoder=rules.train_vocoder.output,
    output:
        f"{RESULTS}/eval/{{family}}/vadusa-{{mode}}-tau{{tau}}/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge"),
    log:
        f"{LOGS}/evaluate_{{family}}_vadusa_{{mode}}_tau{{tau}}_test.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method vadusa --tau {wildcards.tau} "
        "--batch-size 1 "
        "--out {RESULTS}/eval/{wildcards.family}/vadusa-{wildcards.mode}-tau{wildcards.tau}/test "
        "> {log} 2>&1"


rule sweep:
    """Optuna over tau, heads used and tree size (and sampling, if configured): speedup against
    AR in the same run vs judge WER, on the first sweep.utterances of sweep.split. A killed
    sweep resumes from its study.db; a finished one is not re-run."""
    input:
        model=rules.train_heads.output,
        vocoder=rules.train_vocoder.output,
    output:
        chosen=f"{RESULTS}/sweep/{{family}}/{{mode}}/chosen.yaml",
        trials=f"{RESULTS}/sweep/{{family}}/{{mode}}/trials.csv",
        pareto=f"{RESULTS}/sweep/{{family}}/{{mode}}/pareto.csv",
        plots=multiext(f"{RESULTS}/sweep/{{family}}/{{mode}}/", "pareto.png", "tau.png",
                       "heads.png", "tree.png"),
    params:
        config_digest=CFG.section_hash("decoding", "sweep", "judge",
                                       exclude=JUDGE_EVAL_ONLY),
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


rule table:
    """The main table of the default family: AR, VADUSA, VADUSA-wt, typical acceptance."""
    input:
        expand(rules.evaluate_ar.output, family=CFG.tokens.default_family),
        expand(rules.bench_ar.output, family=CFG.tokens.default_family),
        expand(rules.bench_vadusa.output, family=CFG.tokens.default_family,
               mode=["frozen", "joint"]),
        expand(rules.evaluate_vadusa.output, family=CFG.tokens.default_family,
               mode=["frozen", "joint"], tau=CFG.heads.eval_taus),
    output:
        markdown=f"{RESULTS}/tables/main.md",
        csv=f"{RESULTS}/tables/main.csv",
    log:
        f"{LOGS}/table.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --families {CFG.tokens.default_family} "
        "--out {RESULTS}/tables > {log} 2>&1"


rule vadusa:
    input:
        rules.table.output,
        expand(rules.sweep.output.chosen, family=CFG.tokens.default_family, mode="frozen"),
        expand(rules.bench_vadusa.output, family=CFG.tokens.default_family,
               mode=["frozen", "joint"]),
        expand(rules.bench_trees.output, family=CFG.tokens.default_family,
               mode=["frozen", "joint"]),
        expand(rules.evaluate_vadusa.output, family=CFG.tokens.default_family,
               mode=["frozen", "joint"], tau=CFG.heads.eval_taus),
        expand(rules.calibrate.output, family=CFG.tokens.default_family, mode="frozen",
               tau=CFG.heads.eval_taus),
