# WER of VADUSA decoding (heads -> unit vocoder -> Whisper judge) on the test split, per head
# mode and tolerance tau; the targets ask for measure.eval_taus (PLAN.vadusa_evaluations).


rule evaluate_vadusa:
    input:
        unpack(vocoding),
        model=rules.train_heads.output,
    output:
        PLAN.eval_metrics(system=PLAN.vadusa_system()),
    params:
        nar=nar_argument,
        # not decoding.tau nor decoding.method: the command line sets them
        config_digest=PLAN.digest("evaluate_vadusa"),
    log:
        PLAN.log("evaluate_{family}_vadusa_{mode}_tau{tau}_test"),
    threads: PAIRED
    resources:
        mem_mb=8000,
        runtime=120,
    shell:
        "vadusa evaluate --config {RESOLVED} --set judge.threads={threads} "
        "--checkpoint {input.model} --split test "
        "--corpus {CORPUS} --vocoder {input.vocoder} {params.nar} --method vadusa "
        "--tau {wildcards.tau} --batch-size 1 "
        f"--out {in_shell(PLAN.evaluation(system=PLAN.vadusa_system()))} "
        "> {log} 2>&1"
