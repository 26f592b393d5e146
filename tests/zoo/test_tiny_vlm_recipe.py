"""The recipe behind the bundled model: tokenizer, processor and config agree on the image token."""
from __future__ import annotations

from spikemllm.zoo.tiny_vlm import (
    IMAGE_TOKEN,
    IMAGE_TOKENS,
    build_config,
    build_model,
    build_processor,
    train_tokenizer,
)

CORPUS = ["What is the total?", " 417", "Is there a red circle? Please answer yes or no.", " Yes"] * 20


def test_tokenizer_special_tokens_and_digits():
    tok = train_tokenizer(CORPUS, vocab_size=300)
    ids = tok(IMAGE_TOKEN + IMAGE_TOKEN + "What", add_special_tokens=False)["input_ids"]
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert ids[:2] == [image_id, image_id]
    # Digits are always single tokens, even a frequent number like 417.
    assert [tok.decode([i]) for i in tok(" 417", add_special_tokens=False)["input_ids"]] == [" ", "4", "1", "7"]
    assert tok.decode(tok("Is there a red circle?")["input_ids"]) == "Is there a red circle?"


def test_chat_template_and_image_expansion():
    processor = build_processor(train_tokenizer(CORPUS, vocab_size=300))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "<image>Q?\nAnswer:"
    from PIL import Image

    batch = processor(text=[text], images=[Image.new("RGB", (50, 70))], return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert int((batch["input_ids"] == image_id).sum()) == IMAGE_TOKENS
    assert tuple(batch["pixel_values"].shape) == (1, 3, 96, 96)  # resized and centre-cropped


def test_config_is_llava_with_matching_ids():
    tok = train_tokenizer(CORPUS, vocab_size=300)
    config = build_config(tok)
    assert config.model_type == "llava"
    assert config.image_token_id == tok.convert_tokens_to_ids(IMAGE_TOKEN)
    assert config.text_config.model_type == "llama" and config.vision_config.model_type == "clip_vision_model"
    model = build_model(config)
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < n < 10_000_000
