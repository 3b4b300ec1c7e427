"""Text to speech with a trained model: ``decode`` (tokens), ``synthesize`` (a waveform)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vadusa.cli.common import (
    Subcommand,
    UserFacingError,
    batch_size_option,
    checkpoint_option,
    decoding_bundle,
    decoding_config,
    decoding_options,
    draft_bundle,
    guard,
    nar_option,
    nar_stage,
    vocoder_option,
    vocoder_path,
)
from vadusa.config import Config


def decode_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    parser.add_argument("--texts", required=True,
                        help="one `text` or `speaker<TAB>text` per line")
    parser.add_argument("--out", required=True, help="output jsonl: tokens, timing, forwards")
    decoding_options(parser)
    batch_size_option(parser)


@guard
def cmd_decode(cfg: Config, args: argparse.Namespace) -> int:
    from vadusa.decoding.run import decode_requests, read_texts, write_jsonl  # noqa: PLC0415

    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    records = list(decode_requests(bundle, read_texts(Path(args.texts)), decoding,
                                   draft=draft_bundle(bundle, decoding)))
    write_jsonl(Path(args.out), records)
    tokens = sum(len(r["tokens"]) for r in records)
    seconds = sum(r["seconds"] for r in records) / decoding.batch_size
    print(f"{len(records)} utterances, {tokens} tokens, {tokens / seconds:.1f} tokens/s "
          f"(batch {decoding.batch_size}) -> {args.out}")
    return 0


def synthesize_options(parser: argparse.ArgumentParser) -> None:
    checkpoint_option(parser)
    parser.add_argument("--text", required=True,
                        help="what to say; a text longer than the model's context is spoken "
                        "sentence by sentence in one voice")
    parser.add_argument("--speaker", help="a training speaker (see the error for the list)")
    parser.add_argument("--prompt-audio", "--prompt-wav", dest="prompt_audio",
                        help="a recording of the voice to speak with (about 3 s; any voice, "
                        "heard in training or not; needs --prompt-text)")
    parser.add_argument("--prompt-text", help="the transcript of --prompt-audio")
    vocoder_option(parser)
    nar_option(parser)
    decoding_options(parser)
    parser.add_argument("--out", required=True, help="output WAV file")


#: silence between the pieces of a text spoken piece by piece (``text_pieces``)
PIECE_PAUSE_SECONDS = 0.25


@guard
def cmd_synthesize(cfg: Config, args: argparse.Namespace) -> int:
    import numpy as np  # noqa: PLC0415

    from vadusa.data import audio  # noqa: PLC0415
    from vadusa.decoding.run import decode_prefix  # noqa: PLC0415
    from vadusa.devices import resolve_device  # noqa: PLC0415
    from vadusa.model.loading import resolve_speaker, text_pieces  # noqa: PLC0415
    from vadusa.vocoder import load_vocoder, voice_for, wants_embedding  # noqa: PLC0415

    device = resolve_device(cfg.device)
    decoding = decoding_config(cfg, args)
    bundle = decoding_bundle(cfg, args.checkpoint, decoding)
    vocoder_file = vocoder_path(cfg, args, bundle.family)
    vocoder = load_vocoder(vocoder_file, device=device, family=bundle.family)
    prompt, embedding = None, None
    if args.prompt_audio or args.prompt_text:
        if not (args.prompt_audio and args.prompt_text):
            raise UserFacingError("--prompt-audio and --prompt-text go together")
        from vadusa.tokenizers.registry import load_tokenizer  # noqa: PLC0415

        wave, rate = audio.read(args.prompt_audio)
        tokens = load_tokenizer(cfg, bundle.family, device).encode(wave, rate).tolist()
        if len(tokens) > bundle.max_seq // 2:
            raise UserFacingError(
                f"--prompt-audio {args.prompt_audio} lasts {len(wave) / rate:.1f} s, "
                f"{len(tokens)} tokens: more than half the model's context "
                f"(model.max_seq={bundle.max_seq}); give about 3 s of it")
        prompt = (args.prompt_text, tokens)
        if wants_embedding(vocoder):  # the vocoder renders the voice from the prompt's
            from vadusa.eval.similarity import SpeakerSimilarity  # noqa: PLC0415

            embedding = SpeakerSimilarity(str(device)).embed(wave, rate)
    speaker = resolve_speaker(bundle, args.speaker)
    if args.speaker is None and speaker is not None and prompt is None:
        print(f"no --speaker: speaking with the model's default voice, {speaker}")
    pieces = text_pieces(bundle, args.text, args.speaker, prompt,
                         cfg.decoding.max_tokens_per_symbol, decoding.speaking_rate)
    if len(pieces) > 1:
        print(f"the text is longer than the model's context: {len(pieces)} pieces, "
              "spoken one by one in the same voice")
    nar = nar_stage(cfg, args, bundle.family, vocoder_file, device)
    voice = voice_for(vocoder, speaker, embedding)
    draft = draft_bundle(bundle, decoding)
    waves, n_tokens, seconds, rate = [], 0, 0.0, 0
    for i, (piece, prefix) in enumerate(pieces):
        result = decode_prefix(bundle, prefix, decoding, utterance=i, draft=draft)
        if not result.tokens:
            raise UserFacingError(f"the model produced no speech tokens for {piece!r}")
        codes = np.asarray(result.tokens)  # (F,) codebook 1
        if nar is not None:  # every codebook (or, a mel stage, the mel they encode) -> audio
            wave, rate = nar.speak(piece, speaker, codes, vocoder, voice)
        else:
            wave, rate = vocoder.decode(codes, voice)
        if waves:
            waves.append(np.zeros(int(PIECE_PAUSE_SECONDS * rate), dtype=np.float32))
        waves.append(wave)
        n_tokens += len(result.tokens)
        seconds += result.seconds
    audio.write_wav(args.out, np.concatenate(waves), rate)
    filled = (f", {nar.codebooks} codebooks" + (" (their mel, regressed)"
                                                if nar.decoding == "continuous" else "")
              if nar is not None else "")
    print(f"{n_tokens} tokens in {seconds:.2f} s ({n_tokens / seconds:.1f} tokens/s){filled}"
          f" -> {args.out}")
    return 0


SUBCOMMANDS = {
    "decode": Subcommand("decode a list of texts to speech tokens (jsonl)",
                         decode_options, cmd_decode),
    "synthesize": Subcommand("text -> speech tokens -> waveform",
                             synthesize_options, cmd_synthesize),
}
