# Speech tokens per family ({family}: whisper | hubert | wav2vec2 | encodec | melrvq). The
# semantic families: a from-scratch SSL model where configured, k-means on train features, then
# token files for every split. The acoustic families: encodec, a codec (trained here, or the
# published one from tokens.encodec.weights) whose first codebook is the token; melrvq,
# residual k-means over HiFi-GAN log-mels, every codebook stored beside codebook 1 for the NAR
# stage (rule train_nar).

UNIT_FAMILIES = "whisper|hubert|wav2vec2"  # k-means units, decoded by a trained unit vocoder
KMEANS_FAMILIES = f"{UNIT_FAMILIES}|melrvq"


def ssl_model(wildcards):
    """The pipeline-trained SSL model a family needs, if any."""
    if wildcards.family in ("hubert", "wav2vec2"):
        if getattr(CFG.tokens, wildcards.family).weights == "scratch":
            return PLAN.ssl_model(wildcards.family)
    return []


rule train_ssl:
    input:
        rules.prepare_corpus.output.manifests,
    output:
        PLAN.ssl_model(),
    wildcard_constraints:
        family="hubert|wav2vec2",
    params:
        config_digest=lambda w: PLAN.digest("train_ssl", w.family),
    log:
        PLAN.log("train_ssl_{family}"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa train-ssl --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--out {in_shell(PLAN.ssl_dir())} > {{log}} 2>&1"


def codec_checkpoint(wildcards=None):
    """The encodec family's codec: trained by the pipeline, or the published file."""
    if CFG.tokens.encodec.weights == "scratch":
        return PLAN.codec()
    return CFG.tokens.encodec.weights


rule train_codec:
    input:
        rules.prepare_corpus.output.manifests,
    output:
        PLAN.codec(),
    params:
        config_digest=PLAN.digest("train_codec"),
    log:
        PLAN.log("train_codec"),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
    shell:
        "vadusa train-codec --config {RESOLVED} --corpus {CORPUS} "
        f"--out {PLAN.codec_dir()} > {{log}} 2>&1"


def first_units(wildcards):
    """The k-means of the units melrvq's codebook 1 reads (tokens.melrvq.first), if any."""
    if wildcards.family == "melrvq" and CFG.tokens.melrvq.first != "mel":
        return PLAN.kmeans(CFG.tokens.melrvq.first)
    return []


rule fit_kmeans:
    input:
        manifests=rules.prepare_corpus.output.manifests,
        ssl=ssl_model,
        units=first_units,
    output:
        PLAN.kmeans(),
    wildcard_constraints:
        family=KMEANS_FAMILIES,
    params:
        config_digest=lambda w: PLAN.digest("fit_kmeans", w.family),
    log:
        PLAN.log("fit_kmeans_{family}"),
    threads: 2
    # the units, then the tokens, then the unit vocoder: the default target's critical path
    # (the corpus QA, which nothing waits for, took the first minute of it otherwise)
    priority: 10
    resources:
        mem_mb=8000,
        runtime=60,
    shell:
        "vadusa fit-kmeans --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        "--out {output} > {log} 2>&1"


def tokenizer_files(wildcards):
    """What turns audio into a family's tokens: its k-means (and SSL model), or the codec.
    The encodec tokens need no config digest: codebook 1 does not depend on the bandwidth, and
    the codec file changes whenever its config does (train_codec's digest)."""
    if wildcards.family == "encodec":
        return [codec_checkpoint()]
    ssl, units = ssl_model(wildcards), first_units(wildcards)
    return [PLAN.kmeans(wildcards.family)] + ([ssl] if ssl else []) + ([units] if units else [])


rule tokenize:
    input:
        tokenizer_files,
    output:
        tokens=expand(PLAN.token_file(family="{{family}}"), split=SPLITS,
                      ext=["bin", "index.npz"]),
        meta=PLAN.tokens(name="meta.json"),
        stats=PLAN.tokens(name="stats.json"),
        figure=reported(PLAN.tokens(name="cluster_usage.png"), "cluster_usage", "Tokens",
                        "{family}", "figure", "token usage (train split)"),
    log:
        PLAN.log("tokenize_{family}"),
    threads: 2
    priority: 10  # as fit_kmeans: on the critical path
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa tokenize --config {RESOLVED} --family {wildcards.family} --corpus {CORPUS} "
        f"--out {in_shell(PLAN.tokens())} > {{log}} 2>&1"


rule tokens:
    input:
        expand(rules.tokenize.output.stats, family=FAMILIES),
