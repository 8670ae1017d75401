"""unittest run in-process: failures and errors carry tracebacks with caret lines, and the
test ids come from the classes defined in __main__."""
import io
import re
import unittest


def divide(a, b):
    return a / b


class MathTests(unittest.TestCase):
    def test_ok(self):
        self.assertEqual(divide(6, 3), 2)

    def test_fail(self):
        self.assertEqual(divide(1, 4), 0.5 + len("x"))

    def test_error(self):
        divide(1, 0)

    def test_raises(self):
        with self.assertRaises(ZeroDivisionError) as cm:
            divide(2, 0)
        self.assertIn("division", str(cm.exception))

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.assertTrue(divide(0, 1))

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(divide(i, 1), 2)


stream = io.StringIO()
suite = unittest.defaultTestLoader.loadTestsFromTestCase(MathTests)
result = unittest.TextTestRunner(stream=stream, verbosity=2).run(suite)
print(re.sub(r"Ran (\d+) tests? in [0-9.]+s", r"Ran \1 tests in TIME", stream.getvalue()))
print(result.testsRun, len(result.failures), len(result.errors), len(result.expectedFailures))
