# Text-to-speech alignment per family (model.alignment: duration): a CTC phone recogniser on
# the family's tokens gives every utterance's phone durations in token frames (`vadusa align`,
# with its dev phone error rate and a figure of dev alignments over their spectrograms), and
# the duration model learns to predict them from the text (`vadusa train-durations`). The base
# model trains on the durations and carries the duration model in base.pt for synthesis.

ALIGN_FOLDER = ("Alignment", "{family}")  # the report's category, subcategory


rule align:
    input:
        tokens=rules.tokenize.output.tokens,
        manifests=rules.prepare_corpus.output.manifests,
    output:
        durations=expand(PLAN.durations("{{family}}", "{split}.jsonl.gz"), split=SPLITS),
        meta=PLAN.durations(name="meta.json"),
        qa=PLAN.durations(name="qa.json"),
        figure=reported(PLAN.durations(name="alignments.png"), "alignments",
                        *ALIGN_FOLDER, "figure", "dev alignments over their spectrograms"),
    params:
        config_digest=PLAN.digest("align"),
    log:
        PLAN.log("align_{family}"),
    threads: PAIRED  # beside the vocoder, which starts at the same time
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa align --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--tokens {in_shell(PLAN.tokens())} --out {in_shell(PLAN.durations())} "
        "> {log} 2>&1"


rule train_durations:
    input:
        rules.align.output.durations,
        rules.align.output.meta,
    output:
        PLAN.duration_model(),
    params:
        config_digest=PLAN.digest("train_durations"),
    log:
        PLAN.log("train_durations_{family}"),
    threads: PAIRED
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "vadusa train-durations --config {RESOLVED} --family {wildcards.family} "
        f"--corpus {{CORPUS}} --durations {in_shell(PLAN.durations())} "
        f"--out {in_shell(PLAN.model_dir(model='durations'))} > {{log}} 2>&1"


def alignment_inputs(wildcards):
    """What a model trained with durations reads besides its tokens: the aligner's durations
    and the duration model (nothing for model.alignment none or guided)."""
    if CFG.model.alignment != "duration":
        return {}
    return {"durations": expand(rules.align.output.durations, family=wildcards.family),
            "duration_model": expand(rules.train_durations.output, family=wildcards.family)}
