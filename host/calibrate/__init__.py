"""`piop calibrate`: the device model from measurement with fio.

`target.py` checks and lays out the test file, `fio.py` runs fio and reads its JSON,
`ladder.py` runs the probes and the background-rate ladder, `fit.py` fits the device
class and the measured curve with leave-one-out errors, `report.py` writes the device
entry YAML, the PNG and fio's raw output.
"""
