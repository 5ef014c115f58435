rule attribute:
    input:
        # by subject (a model's attribute decisions, an embedder's verification pairs): the data,
        # the network, the pairs with the embedder's scores, maps made elsewhere (plan.attribution_inputs)
        unpack(attribution_inputs),
    output:
        L("maps"),
    log:
        L.log("attribute/{subject}/{method}/{shard}"),
    benchmark:
        L.benchmark("attribute/{subject}/{method}/{shard}")
    conda:
        "../envs/facexai.yaml"
    threads: config["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request(),
    params:
        method=lambda wc: config["methods"][wc.method],  # a change here reruns only this method
        # which subjects, without the method list: adding a method reruns no other
        explain=lambda wc: PLAN.explain_selection(wc.subject),
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/attribute.py"
