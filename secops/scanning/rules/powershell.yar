/*
 * PowerShell download cradles (fetch a script from the network and run it in memory)
 * and encoded command lines (-EncodedCommand and its accepted abbreviations).
 */
rule SECOPS_PowerShell_Download_Cradle
{
    meta:
        severity = "high"
        description = "PowerShell download cradle: downloads and runs code"
    strings:
        $wc = "Net.WebClient" nocase
        $ds = ".DownloadString(" nocase
        $dd = ".DownloadData(" nocase
        $df = ".DownloadFile(" nocase
        $iex1 = /\b(iex|invoke-expression)\b/ nocase
        $iwr = /\b(iwr|irm|invoke-webrequest|invoke-restmethod|start-bitstransfer)\b/ nocase
        $pipe_iex = /\|\s*(iex|invoke-expression)\b/ nocase
    condition:
        ($wc and ($ds or $dd or $df)) or
        ($iex1 and ($ds or $dd)) or
        ($iwr and $pipe_iex)
}

rule SECOPS_PowerShell_Encoded_Command
{
    meta:
        severity = "high"
        description = "PowerShell started with a base64-encoded command"
    strings:
        $enc = /powershell(\.exe)?["']?\s+([-\/][a-z]+\s+){0,6}[-\/]e(c|n|nc|nco|ncod|ncode|ncoded|ncodedc|ncodedco|ncodedcom|ncodedcomm|ncodedcomma|ncodedcommand)?\s+["']?[A-Za-z0-9+\/]{24,}={0,2}/ nocase
    condition:
        $enc
}
