r"""Fits a likelihood that `flowscan scan --save-likelihood` wrote, without flowscan or
torch: numpy, onnxruntime and iminuit only (docs/export.md).

    python fit_without_flowscan.py runs/scan-<time>/likelihood.json [result.json]

Prints Minuit's fit from the analysis's `init` point (the domain's centre without one)
beside the document's `best_fit` (flowscan's), and writes them, with the NLL at
`best_fit`, to `result.json` if given.
"""

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from iminuit import Minuit


class Density:
    r"""log p(x | theta) `(N,)` of an `onnx_dist` on the fixed events `x` `(N, F)`, one
    thread; the last theta's values are kept (Minuit often moves the yields alone)."""

    def __init__(self, path: Path, x: np.ndarray) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(path, options, ["CPUExecutionProvider"])
        self.x, self.theta, self.value = x, None, None

    def __call__(self, theta: np.ndarray) -> np.ndarray:
        if self.theta is None or not np.array_equal(theta, self.theta):
            feed = {"x": self.x}
            if len(theta):
                feed["theta"] = np.tile(theta, (len(self.x), 1))
            self.theta, self.value = theta.copy(), self.session.run(None, feed)[0]
        return self.value


def likelihood(path: Path) -> tuple:
    r"""The document's NLL as a function of its parameters, their names, bounds, and
    its parameter points by name (`"fixed"`: the names constant in `"init"`)."""
    doc = json.loads(path.read_text())
    distributions = {d["name"]: d for d in doc["distributions"]}
    points = {p["name"]: {q["name"]: q["value"] for q in p["parameters"]}
              for p in doc["parameter_points"]}  # fmt: skip
    points["fixed"] = [q["name"] for p in doc["parameter_points"] if p["name"] == "init"
                       for q in p["parameters"] if q.get("const")]  # fmt: skip
    constants = points.get("constants", {})
    data = doc["data"][0]
    x = np.array(data["entries"], dtype=np.float64)
    w = np.array(data.get("weights", np.ones(len(x))), dtype=np.float64)
    scale = w.sum() / (w**2).sum() if "weights" in data else 1.0  # in effective events
    axes = doc["domains"][0]["axes"]
    names = [a["name"] for a in axes]
    mixture = distributions["model"]
    densities = [
        (Density(path.parent / distributions[s]["file"], x),
         [names.index(p) for p in distributions[s]["parameters"]])
        for s in mixture["summands"]
    ]  # fmt: skip
    aux = doc["likelihoods"][0].get("aux_distributions", [])
    constraints = [distributions[a] for a in aux]

    def nll(theta: np.ndarray) -> float:
        (lp_s, lp_b) = (density(theta[index]) for density, index in densities)
        if mixture["extended"]:  # NLL = n_sig + n_bkg - sum log(n_sig p_s + n_bkg p_b)
            n_s, n_b = theta[names.index("n_sig")], theta[names.index("n_bkg")]
        else:  # f_sig = n_sig / (n_sig + n_bkg), constants
            n_s = constants["n_sig"] / (constants["n_sig"] + constants["n_bkg"])
            n_b = 1 - n_s
        top = np.maximum(lp_s, lp_b)
        log_total = np.log(n_s * np.exp(lp_s - top) + n_b * np.exp(lp_b - top)) + top
        value = scale * (-(w * log_total).sum() + (n_s + n_b if mixture["extended"] else 0.0))
        for c in constraints:  # -log of the auxiliary measurement, up to a constant
            observed = constants[c["x"]]
            if c["type"] == "gaussian_dist":
                value += 0.5 * ((theta[names.index(c["mean"])] - observed) / c["sigma"]) ** 2
            else:  # lognormal_dist, its location log(nu): mu = "log_<nu>"
                nu = theta[names.index(c["mu"].removeprefix("log_"))]
                value += 0.5 * (np.log(nu / observed) / c["sigma"]) ** 2
        return float(value)

    bounds = [(a["min"], a["max"]) for a in axes]
    return nll, names, bounds, points


def main(path: str, out: str | None = None) -> None:
    nll, names, bounds, points = likelihood(Path(path))
    if "best_fit" not in points:
        sys.exit(f"{path} has no best_fit point: flowscan's fits of it failed")
    centre = {n: (low + high) / 2 for n, (low, high) in zip(names, bounds, strict=True)}
    start = [points.get("init", centre)[n] for n in names]
    minuit = Minuit(lambda theta: nll(np.asarray(theta)), start, name=names)
    minuit.errordef, minuit.limits = Minuit.LIKELIHOOD, bounds
    for name in points["fixed"]:  # held where the fit held them
        minuit.fixed[name] = True
    minuit.migrad()
    best = np.array([points["best_fit"][n] for n in names])
    print(f"Minuit without flowscan: valid {minuit.valid}, NLL {minuit.fval:.6f} "
          f"(flowscan's best fit: {nll(best):.6f}), {minuit.nfcn} NLL evaluations")  # fmt: skip
    print(
        f"{'parameter':>10} {'fit':>12} {'error':>10} {'flowscan':>12} {'(fit-flowscan)/error':>21}"
    )
    for n, v, e, b in zip(names, minuit.values, minuit.errors, best, strict=True):
        print(f"{n:>10} {v:12.5g} {e:10.3g} {b:12.5g} {(v - b) / e:21.3f}")
    if out:
        result = {"names": names, "values": list(minuit.values), "errors": list(minuit.errors),
                  "nll": minuit.fval, "valid": minuit.valid, "nll_best_fit": nll(best),
                  "evaluations": minuit.nfcn}  # fmt: skip
        Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
