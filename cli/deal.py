"""`singularity deal ...`: send deals through the deal making service and list their states."""
from __future__ import annotations

import urllib.parse
from typing import Optional

import typer

from cli import history as window_options
from cli.common import client_for, parse_size_option
from cli.output import console, print_fields, print_json, print_table

app = typer.Typer(no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON for scripts.")

COLUMNS = [("id", "ID"), ("state", "State"), ("provider", "Provider"), ("pieceCid", "Piece CID"),
           ("client", "Client"), ("proposalCid", "Proposal"), ("dealId", "Deal ID"), ("startEpoch", "Start"),
           ("endEpoch", "End"), ("message", "Message")]
FIELDS = [("id", "ID"), ("state", "State"), ("message", "Message"), ("client", "Client"), ("clientId", "Client ID"),
          ("provider", "Provider"), ("pieceCid", "Piece CID"), ("pieceSize", "Piece size"), ("dataCid", "Data CID"),
          ("url", "URL"), ("carSize", "CAR size"), ("verified", "Verified"), ("proposalCid", "Proposal"),
          ("dealId", "Deal ID"), ("sectorId", "Sector"), ("startEpoch", "Start epoch"), ("endEpoch", "End epoch"),
          ("sectorStartEpoch", "Sector start"), ("activation", "Activation"), ("expiration", "Expiration"),
          ("createdAt", "Created"), ("updatedAt", "Updated")]


def api():
    return client_for("deal_making_service")


@app.command()
def send(
    wallet: str = typer.Option(..., help="Client wallet (f1... or f3...) that signs the proposal."),
    key_path: str = typer.Option(..., "--key-path", help="Wallet key file on the deal-making host, inside its "
                                 "[deal_making_service] key_dir (absolute, or relative to key_dir); never stored."),
    provider: str = typer.Option(..., help="Storage provider ID address, e.g. f01234."),
    piece_cid: str = typer.Option(..., "--piece-cid", help="Piece CID (baga...)."),
    piece_size: str = typer.Option(..., "--piece-size", help="Padded piece size, a power of two (e.g. 32GiB)."),
    data_cid: str = typer.Option(..., "--data-cid", help="Payload root CID of the CAR."),
    url: Optional[str] = typer.Option(None, help="HTTP(S) URL the provider downloads the CAR from; "
                                      "omit it for an offline deal."),
    car_size: Optional[str] = typer.Option(None, "--car-size", help="CAR file size; required with --url."),
    verified: bool = typer.Option(True, "--verified/--unverified", help="Spend DataCap (verified deal)."),
    duration: Optional[int] = typer.Option(None, help="Deal duration in epochs (518400..3680640; "
                                           "default 518400 = 180 days)."),
    start_epoch: Optional[int] = typer.Option(None, "--start-epoch", help="Start epoch (default: head + 5760)."),
    price: Optional[str] = typer.Option(None, help="attoFIL per epoch per GiB."),
    keep_unsealed: bool = typer.Option(True, "--keep-unsealed/--remove-unsealed",
                                       help="Ask the provider to keep an unsealed copy."),
    announce: bool = typer.Option(True, "--announce/--no-announce", help="Announce the data to IPNI."),
    json_: bool = JSON,
) -> None:
    """Propose a deal for one piece to one storage provider."""
    parse_size_option("--piece-size", piece_size)
    parse_size_option("--car-size", car_size)
    body = {
        "wallet": wallet, "keyPath": key_path, "provider": provider,
        "pieceCid": piece_cid, "pieceSize": piece_size, "dataCid": data_cid, "url": url, "carSize": car_size,
        "verified": verified, "duration": duration, "startEpoch": start_epoch, "price": price,
        "keepUnsealed": keep_unsealed, "announceToIpni": announce,
    }
    result = api().post("/deal", {k: v for k, v in body.items() if v is not None})
    if json_:
        print_json(result)
    elif result.get("existing"):
        console.print(f"Already pending: proposal {result['proposalCid']} (deal {result['id']}, {result['state']})",
                      highlight=False)
    else:
        console.print(f"Proposed: proposal {result['proposalCid']} (deal {result['id']})", highlight=False)


@app.command("list")
def list_(
    state: Optional[str] = typer.Option(None, help="proposed, published, active, expired, proposal_expired, "
                                        "slashed, rejected, error or sending."),
    provider: Optional[str] = typer.Option(None, help="Storage provider ID address."),
    piece: Optional[str] = typer.Option(None, help="Piece CID."),
    client: Optional[str] = typer.Option(None, help="Client wallet address."),
    offset: int = typer.Option(0, help="Deals to skip."),
    limit: int = typer.Option(100, help="Deals to show."),
    json_: bool = JSON,
) -> None:
    """Deals and their states, oldest first."""
    result = api().get("/deals", state=state, provider=provider, piece=piece, client=client,
                       offset=offset, limit=limit)
    if json_:
        print_json(result)
        return
    print_table(result["deals"], COLUMNS)
    shown = len(result["deals"])
    if shown < result["total"]:
        console.print(f"{offset + 1}-{offset + shown} of {result['total']} (use --offset/--limit)", highlight=False)


@app.command()
def show(deal_id: str = typer.Argument(..., metavar="ID"), json_: bool = JSON) -> None:
    """One deal with its chain details."""
    # Quoted: an id with a space, a slash or a '?' must stay one path segment (and never crash urllib).
    result = api().get(f"/deal/{urllib.parse.quote(deal_id, safe='')}")
    if json_:
        print_json(result)
    else:
        print_fields(result, [(k, label) for k, label in FIELDS if result.get(k) not in (None, "")])


@app.command()
def history(
    provider: Optional[str] = typer.Option(None, help="Only deals with this storage provider."),
    since: Optional[str] = window_options.SINCE,
    until: Optional[str] = window_options.UNTIL,
    bucket: Optional[str] = window_options.BUCKET,
    json_: bool = JSON,
) -> None:
    """How many deals were in each state at the end of each bucket (UTC)."""
    result = api().get("/deals/history", provider=provider, **window_options.window(since, until, bucket))
    if json_:
        print_json(result)
        return
    # Only the states some point counts: nine columns of zeros say nothing.
    shown = [s for s in result["states"] if any(p["counts"].get(s) for p in result["points"])]
    rows = [{"time": window_options.when(p["time"], result["bucket"]), **p["counts"]} for p in result["points"]]
    print_table(rows, [("time", "Until (UTC)"), *[(s, s) for s in shown]])
    if not shown:
        console.print("no deals in this window", highlight=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="deal", help="Make deals with storage providers and follow their states.")
