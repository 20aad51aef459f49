package dispatch

import "fmt"

// exitExplanation says what an infrastructure exit code usually means and
// what to do about it, for the same codes Prefect's workers explain (their
// table lives in prefect._internal.infrastructure_exit_codes). Signals are
// reported both as Python does (-9) and as shells and containers do (137).
func exitExplanation(code int) (meaning, fix string) {
	switch code {
	case 0:
		return "The process exited cleanly.", ""
	case 1:
		return "The process exited with a general error.",
			"Look for an unhandled exception in the flow run's logs."
	case -9:
		return "The process was killed with SIGKILL, usually by the operating system for using too much memory, or by a forced cancellation.",
			"Check the flow run's memory use against its limit; raise the limit if it was exceeded."
	case -15:
		return "The process was stopped with SIGTERM, usually by a graceful shutdown or a cancellation.",
			"If nobody cancelled the run, look for a scale-in, eviction or redeployment of its infrastructure."
	case 125:
		return "The container could not be run (exit code 125 from the container runtime).",
			"Check that the image exists and can be pulled, and that its entrypoint is valid."
	case 126:
		return "The command was found but could not be executed (permission denied).",
			"Make the entrypoint or command executable."
	case 127:
		return "The command was not found.",
			"Install the command in the image or on the host, or fix the command job variable and PATH."
	case 137:
		return "The process was killed (SIGKILL), most likely for running out of memory.",
			"Raise the memory of the flow run's infrastructure (the memory job variable, or the task or container memory)."
	case 143:
		return "The process was stopped with SIGTERM by its container runtime or platform.",
			"If nobody cancelled the run, look for a task stop, eviction or scale-in event on the platform."
	case 247:
		return "The process was terminated for using too much memory.",
			"Raise the memory of the flow run's infrastructure, or reduce the flow's memory use."
	case 0xC000013A:
		return "The process was stopped by Ctrl+C or Ctrl+Break.", ""
	}
	return "The process exited with an unexpected status code.",
		"Look at the flow run's logs and the infrastructure's own logs."
}

// crashMessage is the Crashed message for infrastructure that exited with a
// non-zero code, in the form Prefect's workers use.
func crashMessage(code int, reason string) string {
	meaning, fix := exitExplanation(code)
	msg := fmt.Sprintf("Flow run infrastructure exited with non-zero status code %d. %s", code, meaning)
	if reason != "" {
		msg += " Platform reason: " + reason + "."
	}
	if fix != "" {
		msg += " " + fix
	}
	return msg
}
