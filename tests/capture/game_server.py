"""A stand-in for League's Live Client Data API: real TLS on 127.0.0.1 with a certificate from a
CA generated for the test, answering ``/liveclientdata/allgamedata`` and ``/eventdata`` with the
documented JSON shapes (developer.riotgames.com/docs/lol#game-client-api). ``gameTime`` runs on
the monotonic clock from ``start_ns``; events are scheduled at monotonic instants. Between games
the API answers 404; each game starts its ``gameTime`` and ``EventID`` again at 0."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def make_ca(directory: Path, name: str = "Test Game CA") -> tuple[Any, Any, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    path = directory / f"{name.replace(' ', '_')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_server_cert(directory: Path, ca_key: Any, ca_cert: Any) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class GameServer:
    """Serves the game's state over TLS until :meth:`close`."""

    def __init__(self, cert: Path, key: Path, *, game_time_at_start_s: float = 95.0) -> None:
        self.start_ns = time.monotonic_ns() - round(game_time_at_start_s * 1e9)
        self.events: list[dict[str, Any]] = [
            {"EventID": 0, "EventName": "GameStart", "EventTime": 0.02},
            {"EventID": 1, "EventName": "MinionsSpawning", "EventTime": 65.0},
        ]
        self.requests = 0
        self.in_game = True
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                with server._lock:
                    server.requests += 1
                    game_time = (time.monotonic_ns() - server.start_ns) / 1e9
                    events = [e for e in server.events if e["EventTime"] <= game_time]
                    in_game = server.in_game
                if not in_game:
                    self.send_error(404)
                    return
                if self.path == "/liveclientdata/allgamedata":
                    body: Any = server.allgamedata(game_time, events)
                elif self.path == "/liveclientdata/eventdata":
                    body = {"Events": events}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.url = f"https://127.0.0.1:{self.port}/liveclientdata/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def schedule(self, event_id: int, name: str, at_ns: int, **extra: Any) -> None:
        """An event the game will report as happening at monotonic ``at_ns``."""
        with self._lock:
            self.events.append(
                {
                    "EventID": event_id,
                    "EventName": name,
                    "EventTime": (at_ns - self.start_ns) / 1e9,
                    **extra,
                }
            )

    def end_game(self) -> None:
        """The game is over (or out of reach): the API answers 404 until the next call."""
        with self._lock:
            self.in_game = False

    def resume(self) -> None:
        """The same game answers again, its clock and events where they were."""
        with self._lock:
            self.in_game = True

    def new_game(
        self, *, game_time_at_start_s: float = 0.0, start_event_time: float = 0.02
    ) -> None:
        """The next game: ``gameTime`` from ``game_time_at_start_s`` and ``EventID`` from 0."""
        with self._lock:
            self.start_ns = time.monotonic_ns() - round(game_time_at_start_s * 1e9)
            self.events = [{"EventID": 0, "EventName": "GameStart", "EventTime": start_event_time}]
            self.in_game = True

    @staticmethod
    def allgamedata(game_time: float, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "activePlayer": {
                "riotId": "Player#EUW",
                "level": 3,
                "currentGold": 512.5,
                "championStats": {"currentHealth": 610.0, "maxHealth": 640.0, "armor": 30.0},
                "abilities": {},
                "fullRunes": {},
            },
            "allPlayers": [
                {
                    "championName": "Annie",
                    "riotId": "Player#EUW",
                    "team": "ORDER",
                    "level": 3,
                    "isDead": False,
                    "respawnTimer": 0.0,
                    "position": "MIDDLE",
                    "scores": {"kills": 1, "deaths": 0, "assists": 0, "creepScore": 12},
                    "items": [],
                },
                {
                    "championName": "Garen",
                    "riotId": "Enemy#EUW",
                    "team": "CHAOS",
                    "level": 2,
                    "isDead": True,
                    "respawnTimer": 9.5,
                    "position": "TOP",
                    "scores": {"kills": 0, "deaths": 1, "assists": 0, "creepScore": 8},
                    "items": [],
                },
            ],
            "events": {"Events": events},
            "gameData": {
                "gameMode": "CLASSIC",
                "gameTime": game_time,
                "mapName": "Map11",
                "mapNumber": 11,
                "mapTerrain": "Default",
            },
        }

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
