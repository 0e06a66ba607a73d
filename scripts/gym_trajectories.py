"""Reference trajectories of CartPole-v1 and Acrobot-v1 from Gymnasium itself.

Writes tests/data/gym/cartpole.json and tests/data/gym/acrobot.json, which
tests/rl.rs holds sfnap's environments (the f64 twins and the WGSL kernels) to.
Run by `make gym-data` (which installs the pinned Gymnasium into
target/gym-venv); `make test` only reads the committed files.

Each episode is played to its end (termination, or truncation at 500 steps by
Gymnasium's TimeLimit) from a fixed seed, with a fixed rule choosing the
actions: uniformly random ones from numpy's generator seeded with the episode's
seed, or a simple controller (CartPole: balance, so that the episode is
truncated; Acrobot: pump energy, so that it terminates). The file keeps the
actions chosen, so the tests replay them without the rule. sfnap's device
generator is not numpy's, so the file also keeps the state Gymnasium's reset
drew: the tests start from it.

Per step the file keeps Gymnasium's internal state (float64, written exactly),
its observation (float32, written in the shortest form that reads back to the
same float32), the reward, and at the end whether the episode terminated or was
truncated (every earlier step had neither).
"""

import json
import pathlib
import sys

import gymnasium as gym
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "gym"


def f32(values):
    """float32 values as the shortest decimals that read back to them."""
    return [float(repr(np.float32(v)).removeprefix("np.float32(").removesuffix(")")) for v in values]


def cartpole_balance(obs):
    """Push towards the side the pole falls to, steering the cart back to the middle."""
    x, v, theta, omega = (float(o) for o in obs)
    return int(0.05 * x + 0.2 * v + theta + 0.5 * omega > 0.0)


def acrobot_pump(obs):
    """Torque along the sum of the two angular velocities: pumps energy into the swing."""
    return 2 if float(obs[4]) + float(obs[5]) > 0.0 else 0


def episode(env_id, seed, policy):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    record = {
        "seed": seed,
        "policy": policy.__name__ if callable(policy) else policy,
        "initial_state": [float(s) for s in env.unwrapped.state],
        "initial_obs": f32(obs),
        "actions": [],
        "states": [],
        "obs": [],
        "rewards": [],
    }
    while True:
        if policy == "random":
            action = int(rng.integers(env.action_space.n))
        else:
            action = policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        record["actions"].append(action)
        record["states"].append([float(s) for s in env.unwrapped.state])
        record["obs"].append(f32(obs))
        record["rewards"].append(float(reward))
        if terminated or truncated:
            record["terminated"] = bool(terminated)
            record["truncated"] = bool(truncated)
            return record


def write(name, env_id, plays):
    data = {
        "source": f"Gymnasium {gym.__version__} (MIT license) with numpy {np.__version__}, "
        "written by scripts/gym_trajectories.py",
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
        "env": env_id,
        "episodes": [episode(env_id, seed, policy) for seed, policy in plays],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    ends = ", ".join(
        f"seed {e['seed']} {e['policy']}: {len(e['actions'])} steps, "
        + " and ".join(end for end in ("terminated", "truncated") if e[end])
        for e in data["episodes"]
    )
    print(f"{path}: {ends}", file=sys.stderr)


write("cartpole", "CartPole-v1", [(0, "random"), (1, "random"), (2, cartpole_balance)])
write("acrobot", "Acrobot-v1", [(0, "random"), (1, acrobot_pump)])
