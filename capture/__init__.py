"""System 0 capture: screen video, input events, system audio and webcam, frame-synchronised."""
