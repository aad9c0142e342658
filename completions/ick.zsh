#compdef ick

_ick_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _ICK_COMPLETE=complete_zsh ick)
}

compdef _ick_completion ick
