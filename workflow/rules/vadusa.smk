# VADUSA per family: draft heads on the frozen base (mode "frozen") and base + heads trained
# together (mode "joint", VADUSA-wt); with heads.hydra, Hydra heads in both ways too (modes
# "hydra", "hydra-joint"); acceptance calibration and trees; the speed benchmark against
# KV-cached AR decoding in one process; WER of VADUSA decoding at chosen tolerances.


wildcard_constraints:
    mode="frozen|joint|hydra|hydra-joint",
    tau=r"\d+",


# the head modes the workflow builds, and which Hydra mode races beside which MEDUSA one
HYDRA_OF = {"frozen": "hydra", "joint": "hydra-joint"} if CFG.heads.hydra else {}
HEAD_MODES = ["frozen", "joint", *HYDRA_OF.values()]


def raced_heads(wildcards):
    """The Hydra heads a MEDUSA mode's bench races beside its own (none without heads.hydra)."""
    if wildcards.mode not in HYDRA_OF:
        return []
    return [f"{RESULTS}/models/{wildcards.family}/{HYDRA_OF[wildcards.mode]}/heads.pt"]


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


rule bench_vadusa:
    """Every tau x heads setting (and typical acceptance) against AR in one process; a MEDUSA
    mode's race also runs its Hydra twin's settings (named hydra-..., hydra-joint-...)."""
    input:
        model=rules.train_heads.output,
        also=raced_heads,
    output:
        f"{RESULTS}/bench/{{family}}/vadusa-{{mode}}.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.bench_taus", "heads.bench_heads",
                                       "heads.bench_utterances", exclude=NOT_DRAFT),
        taus=" ".join(str(t) for t in CFG.heads.bench_taus),
        heads=" ".join(str(k) for k in CFG.heads.bench_heads),
        also=lambda wildcards, input: (f"--also-heads {' '.join(input.also)}" if input.also
                                       else ""),
    log:
        f"{LOGS}/bench_{{family}}_vadusa_{{mode}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} {params.also} --split test "
        "--corpus {CORPUS} --limit {CFG.heads.bench_utterances} --batch-sizes "
        "--tau {params.taus} --heads {params.heads} --typical --out {output} > {log} 2>&1"


rule bench_trees:
    """Tree size against speed: on a CPU a big tree's verification pass costs more than its
    extra accepted tokens buy; this race says which size wins on the machine it runs on."""
    input:
        rules.train_heads.output,
    output:
        f"{RESULTS}/bench/{{family}}/trees-{{mode}}.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.bench_trees", "heads.eval_taus",
                                       "heads.bench_utterances", exclude=NOT_DRAFT),
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
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/vadusa-{{mode}}-tau{{tau}}/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge", exclude=NOT_DRAFT),
    log:
        f"{LOGS}/evaluate_{{family}}_vadusa_{{mode}}_tau{{tau}}_test.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method vadusa --tau {wildcards.tau} "
        "--batch-size 1 "
        "--out {RESULTS}/eval/{wildcards.family}/vadusa-{wildcards.mode}-tau{wildcards.tau}/test "
        "> {log} 2>&1"


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


# Another speculative scheme for comparison: a classic draft model (a small AR transformer
# trained like the base, decoding/speculative.py) with lossless speculative sampling.


rule train_draft:
    input:
        unpack(alignment_inputs),
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/draft/base.pt",
    params:
        config_digest=CFG.section_hash("model", "train", "text", "seed", "draft.dim",
                                       "draft.layers", "draft.heads", "draft.steps"),
    log:
        f"{LOGS}/train_draft_{{family}}.log",
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=360,
    shell:
        "vadusa train-draft --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--tokens {TOKENS}/{wildcards.family} --out {RESULTS}/models/{wildcards.family}/draft "
        "> {log} 2>&1"


rule bench_draft:
    input:
        model=rules.train_base.output,
        draft=rules.train_draft.output,
    output:
        f"{RESULTS}/bench/{{family}}/draft.json",
    params:
        config_digest=CFG.section_hash("decoding", "draft.bench_tokens",
                                       "heads.bench_utterances", exclude=NOT_DRAFT),
        gammas=" ".join(str(g) for g in CFG.draft.bench_tokens),
    log:
        f"{LOGS}/bench_{{family}}_draft.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input.model} --split test "
        "--corpus {CORPUS} --limit {CFG.heads.bench_utterances} --batch-sizes "
        "--draft {input.draft} --draft-tokens {params.gammas} --out {output} > {log} 2>&1"


rule evaluate_draft:
    input:
        model=rules.train_base.output,
        draft=rules.train_draft.output,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/draft/test/metrics.json",
    params:
        config_digest=CFG.section_hash("decoding", "judge",
                                       exclude=("decoding.draft_checkpoint",)),
    log:
        f"{LOGS}/evaluate_{{family}}_draft_test.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} --method draft --draft {input.draft} "
        "--batch-size 1 --out {RESULTS}/eval/{wildcards.family}/draft/test > {log} 2>&1"


def table_inputs(families, draft=True):
    """What a main table over ``families`` reads: AR, VADUSA and VADUSA-wt, the quality
    floors (each family's resynthesis of the test split and of the five LibriVox recordings,
    and HiFi-GAN's copy synthesis of the test split) and, with ``draft``, the classic draft
    model."""
    inputs = [
        expand(rules.resynthesize.output, family=families, source=["test", "librivox"]),
        expand(rules.copy_synthesis.output, source="test"),
        expand(rules.evaluate_ar.output, family=families),
        expand(rules.bench_ar.output, family=families),
        expand(rules.bench_vadusa.output, family=families, mode=["frozen", "joint"]),
        expand(rules.evaluate_vadusa.output, family=families, mode=HEAD_MODES,
               tau=CFG.heads.eval_taus),
    ]
    if draft:
        inputs += [expand(rules.bench_draft.output, family=families),
                   expand(rules.evaluate_draft.output, family=families)]
    return inputs


rule table:
    """The main table of the default family (default target): the quality floors, AR, VADUSA,
    VADUSA-wt and typical acceptance. The classic draft model's rows are in tables/all.*
    (reproduce_all); this table shows them too when they were built before it."""
    input:
        table_inputs([CFG.tokens.default_family], draft=False),
    output:
        markdown=f"{RESULTS}/tables/main.md",
        csv=reported(f"{RESULTS}/tables/main.csv", "table_csv", "Main results",
                     CFG.tokens.default_family, "table (CSV)", "the main table"),
        html=reported(f"{RESULTS}/tables/main.html", "main_table", "Main results",
                      CFG.tokens.default_family, "table", "the main table"),
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


rule table_all:
    """The main table over every family (target reproduce_all): tables/all.{md,csv,html}."""
    input:
        table_inputs(FAMILIES),
    output:
        markdown=f"{RESULTS}/tables/all.md",
        csv=reported(f"{RESULTS}/tables/all.csv", "table_csv", "Main results", "all families",
                     "table (CSV)", "the main table"),
        html=reported(f"{RESULTS}/tables/all.html", "main_table", "Main results",
                      "all families", "table", "the main table"),
    log:
        f"{LOGS}/table_all.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --families {FAMILIES} --name all "
        "--out {RESULTS}/tables > {log} 2>&1"


LISTEN_TAU = CFG.heads.eval_taus[0]


def listen_systems(wildcards):
    """The evaluation directories `vadusa listen` puts side by side (NAME=DIR)."""
    root, family = RESULTS, wildcards.family
    systems = {"resynthesis": f"{root}/resynth/{family}/test",
               "AR": f"{root}/eval/{family}/ar/test"}
    for mode, name in (("frozen", "VADUSA"), ("joint", "VADUSA-wt")):
        systems[f"{name} tau {LISTEN_TAU}"] = (
            f"{root}/eval/{family}/vadusa-{mode}-tau{LISTEN_TAU}/test")
    return " ".join(f"--system '{name}={path}'" for name, path in systems.items())


rule listen:
    """A few test utterances to listen to side by side (recording, resynthesis, AR, VADUSA and
    VADUSA-wt at the first eval tau) and where decoding planned each phone."""
    input:
        expand(rules.resynthesize.output, source="test", allow_missing=True),
        rules.evaluate_ar.output,
        expand(rules.evaluate_vadusa.output, mode=["frozen", "joint"], tau=LISTEN_TAU,
               allow_missing=True),
    output:
        page=reported(f"{RESULTS}/listen/{{family}}/index.html", "listen", "Listen",
                      "{family}", "audio", "test utterances side by side"),
        figure=reported(f"{RESULTS}/listen/{{family}}/alignment.png", "listen_alignment",
                        "Listen", "{family}", "figure", "planned phones over the outputs"),
    params:
        systems=listen_systems,
    log:
        f"{LOGS}/listen_{{family}}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "vadusa listen --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--split test --utterances 4 {params.systems} "
        "--out {RESULTS}/listen/{wildcards.family} > {log} 2>&1"


def vadusa_targets(families):
    """Everything VADUSA builds for ``families``: heads frozen and joint (MEDUSA, and Hydra with
    heads.hydra), their races (tau x heads, tree sizes), evaluations, the frozen heads'
    calibration and sweeps, and the listening page."""
    return [
        expand(rules.listen.output, family=families),
        expand(rules.sweep.output.chosen, family=families,
               mode=["frozen"] + (["hydra"] if HYDRA_OF else [])),
        expand(rules.bench_vadusa.output, family=families, mode=["frozen", "joint"]),
        expand(rules.bench_trees.output, family=families, mode=["frozen", "joint"]),
        expand(rules.evaluate_vadusa.output, family=families, mode=HEAD_MODES,
               tau=CFG.heads.eval_taus),
        expand(rules.calibrate.output, family=families, mode="frozen",
               tau=CFG.heads.eval_taus),
    ]


rule wandb_report:
    """The methods compared per family (speedup vs WER, accepted length vs tau, tree size vs
    time, the main table) as a local page, results/<exp>/wandb_report/index.html (target
    reproduce_all). With a W&B login, `vadusa wandb-report --online` also publishes a Report."""
    input:
        rules.table_all.output.csv,
        vadusa_targets(FAMILIES),
    output:
        page=f"{RESULTS}/wandb_report/index.html",
        data=f"{RESULTS}/wandb_report/data.json",
    log:
        f"{LOGS}/wandb_report.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "vadusa wandb-report --config {RESOLVED} --offline "
        "--out {RESULTS}/wandb_report > {log} 2>&1"


rule vadusa:
    input:
        rules.table.output,
        vadusa_targets([CFG.tokens.default_family]),


# The paper's open questions, per family, on frozen heads: tau in heads.open_taus (with
# heads.count heads) and head counts in heads.open_heads (at the first eval tau), each
# evaluation its own job; speed from one race of every setting against AR.
OPEN_K = max(CFG.heads.count, *CFG.heads.open_heads)
OPEN_GRID = sorted({(t, CFG.heads.count) for t in CFG.heads.open_taus}
                   | {(CFG.heads.eval_taus[0], k) for k in CFG.heads.open_heads})


def open_model(wildcards):
    """Frozen heads with enough heads for every open-question count: the main frozen model
    when heads.count suffices, else one trained with max(open_heads) heads."""
    if OPEN_K == CFG.heads.count:
        return f"{RESULTS}/models/{wildcards.family}/frozen/heads.pt"
    return f"{RESULTS}/models/{wildcards.family}/frozen-k{OPEN_K}/heads.pt"


rule train_heads_open:
    input:
        model=rules.train_base.output,
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        f"{RESULTS}/models/{{family}}/frozen-k{{k}}/heads.pt",
    wildcard_constraints:
        k=r"\d+",
    params:
        config_digest=CFG.section_hash("seed", *HeadsConfig.training_keys()),
    log:
        f"{LOGS}/train_heads_{{family}}_frozen-k{{k}}.log",
    threads: PAIRED
    resources:
        mem_mb=16000,
        runtime=240,
    shell:
        "vadusa train-heads --config {RESOLVED} --set heads.count={wildcards.k} "
        "--checkpoint {input.model} --corpus {CORPUS} --tokens {TOKENS}/{wildcards.family} "
        "--out {RESULTS}/models/{wildcards.family}/frozen-k{wildcards.k} > {log} 2>&1"


rule bench_open:
    input:
        open_model,
    output:
        f"{RESULTS}/bench/{{family}}/open.json",
    params:
        config_digest=CFG.section_hash("decoding", "heads.open_taus", "heads.open_heads",
                                       "heads.eval_taus", "heads.open_utterances",
                                       exclude=NOT_DRAFT),
        taus=" ".join(str(t) for t in sorted({t for t, _ in OPEN_GRID})),
        heads=" ".join(str(k) for k in sorted({k for _, k in OPEN_GRID})),
    log:
        f"{LOGS}/bench_{{family}}_open.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa bench --config {RESOLVED} --checkpoint {input} --split test --corpus {CORPUS} "
        "--limit {CFG.heads.open_utterances} --batch-sizes --tau {params.taus} "
        "--heads {params.heads} --out {output} > {log} 2>&1"


def open_setting_options(wildcards):
    if wildcards.setting == "ar":
        return "--method ar"
    tau, k = wildcards.setting.removeprefix("tau").split("-h")
    return f"--method vadusa --tau {tau} --heads {k}"


rule evaluate_open:
    input:
        model=open_model,
        vocoder=vocoder_for,
    output:
        f"{RESULTS}/eval/{{family}}/open/{{setting}}/test/metrics.json",
    wildcard_constraints:
        setting=r"ar|tau\d+-h\d+",
    params:
        config_digest=CFG.section_hash("decoding", "judge", "heads.open_utterances",
                                       exclude=NOT_DRAFT),
        options=open_setting_options,
    log:
        f"{LOGS}/evaluate_{{family}}_open_{{setting}}.log",
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.options} --batch-size 1 "
        "--limit {CFG.heads.open_utterances} "
        "--out {RESULTS}/eval/{wildcards.family}/open/{wildcards.setting}/test > {log} 2>&1"


rule open_table:
    input:
        rules.bench_open.output,
        lambda wildcards: expand(rules.evaluate_open.output, family=wildcards.family,
                                 setting=["ar", *(f"tau{t}-h{k}" for t, k in OPEN_GRID)]),
    output:
        markdown=f"{RESULTS}/tables/open_{{family}}.md",
        csv=reported(f"{RESULTS}/tables/open_{{family}}.csv", "table_csv", "Open questions",
                     "{family}", "table (CSV)", "tau and head count"),
        html=reported(f"{RESULTS}/tables/open_{{family}}.html", "open_table", "Open questions",
                      "{family}", "table", "tau and head count"),
        figure=reported(f"{RESULTS}/tables/open_{{family}}.png", "open_figure",
                        "Open questions", "{family}", "figure", "tau and head count"),
    log:
        f"{LOGS}/open_table_{{family}}.log",
    localrule: True
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "vadusa table --config {RESOLVED} --open --families {wildcards.family} "
        "--out {RESULTS}/tables > {log} 2>&1"


rule open_questions:
    """tau 1..4+ and heads {2, 4, 6} for every family: tables/open_<family>.{md,csv,html,png}."""
    input:
        expand(rules.open_table.output, family=FAMILIES),
