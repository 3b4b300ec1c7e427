# What the runs add up to: the main table (tables/main.*, default family; tables/all.*, every
# family), the listening page per family, the W&B page of the methods compared, and the
# `vadusa` target (everything VADUSA builds for the default family, and its table).


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
