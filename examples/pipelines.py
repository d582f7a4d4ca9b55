"""Each minBERT pipeline in three lines, on a saved model folder or a Hub repository.

    python examples/pipelines.py runs/minbert          (or: user/name on the Hub)

Works where hf_minbert is not installed: the pipeline code travels with the model (trust_remote_code=True).
"""
import sys

from transformers import pipeline

model = sys.argv[1] if len(sys.argv) > 1 else "runs/minbert"

sentiment = pipeline("text-classification", model=model, trust_remote_code=True)
print(sentiment("A gorgeous, witty, seductive movie."))
print(sentiment(["A gorgeous, witty, seductive movie.", "The plot is a dull, lifeless mess."], top_k=2))

paraphrase = pipeline("paraphrase-detection", model=model, trust_remote_code=True)
print(paraphrase(("How do I learn Python quickly?", "What is the fastest way to learn Python?")))
print(paraphrase({"text": "How do I learn Python quickly?", "text_pair": "How do I cook rice?"}))

similarity = pipeline("sentence-similarity", model=model, trust_remote_code=True)
print(similarity(("A man is playing a guitar.", "Someone plays an acoustic guitar.")))
print(similarity(("A man is playing a guitar.", "The stock market fell sharply today.")))

multitask = pipeline("minbert-multitask", model=model, trust_remote_code=True)
print(multitask(("A man is playing a guitar.", "Someone plays an acoustic guitar.")))

features = pipeline("feature-extraction", model=model, trust_remote_code=True)
tokens = features("A man is playing a guitar.")[0]  # one list of hidden_size floats per token
print(f"{len(tokens)} tokens x {len(tokens[0])} features")
