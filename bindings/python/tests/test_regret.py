"""Trainer.regret: the regret against the Taylor optimum, against numpy's
least squares on Jacobians formed here from JVPs; the exploration
statistics; bad input."""

import unittest

import numpy as np

import taylornet as tn
from _support import ContextTestCase, rng, small_net


class RegretTests(ContextTestCase):

    def record(self, loss="mse", steps=5, n=6, solver="auto", **settings):
        """Trains a small tanh MLP with recording on; returns the trainer and,
        per step, (theta_t, x_t, y_t)."""
        net = small_net(self.ctx, "tanh", d=3, widths=(4, 2))
        tr = tn.Trainer(net, loss=loss, learning_rate=0.1, record_taylor=1, regret_solver=solver,
                        **settings)
        g, steps_seen = rng(3), []
        for _ in range(steps):
            x = g.standard_normal((n, 3))
            y = g.standard_normal((n, 2)) if loss == "mse" else np.eye(2)[g.integers(0, 2, n)]
            steps_seen.append((net.params, x, y))
            tr.step(x, y)
        return net, tr, steps_seen

    def jacobian(self, net, theta, x):
        saved = net.params
        net.set_params(theta)
        P = net.num_params
        J = np.stack([net.jvp(x, np.eye(P)[p]).ravel() for p in range(P)], axis=1)
        f = net.forward(x)
        net.set_params(saved)
        return J, f

    def test_mse_regret_is_numpys_least_squares(self):
        for solver in ("direct", "lsqr", "newton_cg"):
            with self.subTest(solver=solver):
                net, tr, seen = self.record(solver=solver)
                rows, rhs, loss_sum = [], [], 0.0
                for theta, x, y in seen:
                    J, f = self.jacobian(net, theta, x)
                    w = 1 / np.sqrt(len(x))
                    # (1/2n) |J (V - theta) + f - y|^2 = (1/2) |w J V - w (J theta - f + y)|^2
                    rows.append(w * J)
                    rhs.append(w * (J @ theta - (f - y).ravel()))
                    loss_sum += 0.5 * np.sum((f - y) ** 2) / len(x)
                A, c = np.vstack(rows), np.concatenate(rhs)
                V = np.linalg.lstsq(A, c, rcond=None)[0]
                optimum = 0.5 * np.sum((A @ V - c) ** 2)
                R, F = tr.regret()
                # A 60 x 26 least-squares problem, well conditioned: the
                # library's solvers and LAPACK's agree to rounding.
                self.assertAlmostEqual(F, optimum, delta=1e-11 * loss_sum)
                self.assertAlmostEqual(R, loss_sum - optimum, delta=1e-11 * loss_sum)
                self.assertAlmostEqual(tr.regret_info("loss_sum"), loss_sum, delta=1e-13 * loss_sum)
                self.assertIs(tr.regret_info("solver_used"), tn.RegretSolver[solver.upper()])
                self.assertEqual(tr.regret_info("steps"), 5)
                self.assertIsInstance(tr.regret_info("iterations"), int)
                Vlib = tr.regret_minimizer()
                self.assertAlmostEqual(0.5 * np.sum((A @ Vlib - c) ** 2), optimum,
                                       delta=1e-11 * loss_sum)

    def test_cross_entropy_optimum_below_the_recorded_points(self):
        net, tr, seen = self.record(loss="softmax_xent", steps=8, n=10, regret_tolerance=1e-10)
        R, F = tr.regret()
        self.assertIs(tr.regret_info("solver_used"), tn.RegretSolver.NEWTON_CG)
        self.assertLessEqual(tr.regret_info("accuracy"), 1e-10)
        jac = [self.jacobian(net, theta, x) + (theta, y) for theta, x, y in seen]

        def taylor_sum(V):
            total = 0.0
            for J, f, theta, y in jac:
                z = f + (J @ (V - theta)).reshape(f.shape)
                z = z - z.max(axis=1, keepdims=True)
                total -= np.sum(y * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / len(y)
            return total
        for theta, _, _ in seen:
            self.assertLessEqual(F, taylor_sum(theta) + 1e-12)
        self.assertAlmostEqual(taylor_sum(tr.regret_minimizer()), F, delta=1e-10)

    def test_settings_and_bad_input(self):
        net = small_net(self.ctx, "relu", d=3, widths=(4, 2))
        tr = tn.Trainer(net)
        self.assertEqual(tr.get("record_taylor"), 0)
        self.assertEqual(tr.get("regret_memory"), 1 << 30)
        self.assertIs(tr.get("regret_solver"), tn.RegretSolver.AUTO)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tr.regret)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tr.regret_info, "steps")
        for param, value in [("record_taylor", 2), ("regret_tolerance", 0),
                             ("regret_max_iterations", 0), ("regret_solver", 4),
                             ("regret_memory", -1)]:
            with self.subTest(param=param, value=value):
                self.assertRaisesStatus(tn.InvalidArgumentError, tn.Status.INVALID_ARG, tr.set,
                                        param, value)
        tr.set("record_taylor", 1).set("regret_memory", 100)
        x = np.ones((2, 3))
        e = self.assertRaisesStatus(tn.OutOfMemoryError, tn.Status.NOMEM, tr.step, x,
                                    np.zeros((2, 2)))
        self.assertIn("TN_TRAIN_REGRET_MEMORY", e.message)
        self.assertEqual(tr.num_steps, 0)
        self.assertRaisesStatus(tn.StateError, tn.Status.STATE, tr.regret_minimizer)

    def test_exploration_statistics(self):
        net = small_net(self.ctx, "relu", d=3, widths=(8, 2))
        tr = tn.Trainer(net, optimizer="adam", learning_rate=0.05, diagnostics=1)
        g = rng(5)
        tr.set_probe(g.standard_normal((16, 3)))
        x, y = g.standard_normal((20, 3)), g.standard_normal((20, 2))
        configs, ever = [], []
        for _ in range(10):
            tr.step(x, y)
            configs.append(tr.stat("configs_visited"))
            ever.append(tr.stat(tn.TrainStat.UNITS_EVER_SWITCHED))
        # Counts only grow: at least the 16 examples' first configurations,
        # at most 16 more per step; the fraction ever switched is monotone
        # and no smaller than the fraction differing from the start.
        self.assertTrue(all(16 <= c <= 16 * (i + 2) for i, c in enumerate(configs)))
        self.assertEqual(configs, sorted(configs))
        self.assertEqual(ever, sorted(ever))
        self.assertGreaterEqual(ever[-1], tr.stat("pattern_change_init"))
        self.assertGreater(configs[-1], 16)


if __name__ == "__main__":
    unittest.main()
